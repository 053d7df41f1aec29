#!/usr/bin/env python3
"""Send one Simple email through Sesame with boto3 and print its MessageId.

Usage: send.py ENDPOINT ACCESS_KEY_ID SECRET FROM TO
Used by the Rust end-to-end test to show boto3's SendEmail produces mail that verifies.
"""
import sys

import boto3


def main():
    endpoint, key, secret, sender, to = sys.argv[1:6]
    ses = boto3.client("sesv2", endpoint_url=endpoint, region_name="us-east-1",
                       aws_access_key_id=key, aws_secret_access_key=secret)
    out = ses.send_email(
        FromEmailAddress=sender,
        Destination={"ToAddresses": [to]},
        Content={"Simple": {"Subject": {"Data": "Sent with boto3"},
                            "Body": {"Text": {"Data": "Hello from boto3 through Sesame."}}}},
    )
    print(out["MessageId"])


if __name__ == "__main__":
    main()
