"""Carries TCP across network namespaces through a Unix socket (file paths cross them).

  unix-to-tcp <socket> <host> <port>   listen on the socket, connect to host:port
  tcp-to-unix <host> <port> <socket>   listen on host:port, connect to the socket
Used so a Ray job inside the test sandbox reaches the session's moto server.
"""
import socket
import sys
import threading


def pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for end in (source, sink):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve(listener: socket.socket, connect) -> None:
    listener.listen(16)
    while True:
        client, _ = listener.accept()
        upstream = connect()
        threading.Thread(target=pipe, args=(client, upstream), daemon=True).start()
        threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()


def main(argv: list[str]) -> None:
    mode = argv[1]
    if mode == "unix-to-tcp":
        path, host, port = argv[2], argv[3], int(argv[4])
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(path)
        serve(listener, lambda: socket.create_connection((host, port)))
    else:
        host, port, path = argv[2], int(argv[3]), argv[4]
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))

        def connect():
            conn = socket.socket(socket.AF_UNIX)
            conn.connect(path)
            return conn

        serve(listener, connect)


if __name__ == "__main__":
    main(sys.argv)
