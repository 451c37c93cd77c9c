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
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    try:
        print(f"uploaded {seed(args.bucket, args.key)}")
    except NoCredentialsError:
        print("error: no AWS credentials: set AWS_PROFILE (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) for an identity "
              f"that may write s3://{args.bucket}", file=sys.stderr)
        return 1
    except ClientError as error:
        print(f"error: S3 refused the upload to s3://{args.bucket}/{args.key}: {error.response['Error'].get('Message') or error}", file=sys.stderr)
        return 1
    except BotoCoreError as error:
        print(f"error: cannot reach S3 for s3://{args.bucket}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
