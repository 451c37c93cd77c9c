"""Upload the wine data set to the bucket Ray jobs read: `python seed.py --bucket B [--key K]`.

Uses the caller's AWS credentials (boto3's usual chain; AWS_ENDPOINT_URL for
a private endpoint) and scikit-learn's copy of the data, so it needs no
download.
"""
from __future__ import annotations

import argparse
import sys

from wine_shap import wine_csv

DEFAULT_KEY = "wine/wine.csv"


def seed(bucket: str, key: str = DEFAULT_KEY, s3=None) -> str:
    import boto3

    s3 = s3 or boto3.client("s3")
    s3.put_object(Bucket=bucket, Key=key, Body=wine_csv(), ContentType="text/csv")
    return f"s3://{bucket}/{key}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bucket", required=True, help="the stack's awsAccess.bucket")
    parser.add_argument("--key", default=DEFAULT_KEY, help=f"object key (default {DEFAULT_KEY})")
    args = parser.parse_args(argv)
    print(f"uploaded {seed(args.bucket, args.key)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
