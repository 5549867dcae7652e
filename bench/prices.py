"""Public AWS list prices, us-east-1, the one price table of bench/cost.py.

As of: 2025 (list prices in force from 2024-11-14, when DynamoDB on-demand throughput was cut by half, through 2025).
Sources (the AWS pricing pages, by name): "Amazon DynamoDB pricing - On-demand capacity", "Amazon SQS pricing",
"AWS Lambda pricing", "Amazon API Gateway pricing" (REST APIs), "AWS Step Functions pricing" (Standard workflows),
"Amazon S3 pricing" (S3 Standard requests), "Amazon EventBridge pricing" (custom events on the default bus).
First tiers, no free tier, no savings plans; data transfer, storage and CloudWatch Logs are not counted.
Written from the pages as remembered on that date, not fetched: check them before quoting a figure.
"""

from __future__ import annotations

AS_OF = "2025 (us-east-1 list prices; DynamoDB on-demand as cut on 2024-11-14)"
REGION = "us-east-1"

# USD per unit named in the key
PRICES: dict[str, float] = {
    "dynamodb_write_request_unit": 0.625 / 1e6,  # on-demand, $0.625 per million WRU
    "dynamodb_read_request_unit": 0.125 / 1e6,  # on-demand, $0.125 per million RRU
    "sqs_request": 0.40 / 1e6,  # standard queue, $0.40 per million requests (each 64 KB chunk of a payload is one)
    "lambda_request": 0.20 / 1e6,  # $0.20 per million requests, x86_64 and arm64 alike
    "lambda_gb_s_x86_64": 0.0000166667,  # first 6 billion GB-s a month
    "lambda_gb_s_arm64": 0.0000133334,  # first 7.5 billion GB-s a month
    "apigw_rest_request": 3.50 / 1e6,  # REST API, first 333 million requests a month
    "s3_put_request": 0.005 / 1000,  # S3 Standard PUT, COPY, POST, LIST
    "s3_get_request": 0.0004 / 1000,  # S3 Standard GET, SELECT and all other requests
    "eventbridge_event": 1.00 / 1e6,  # custom events published (each 64 KB chunk of an entry is one)
    "sfn_standard_transition": 0.025 / 1000,  # Step Functions Standard, $0.025 per 1,000 state transitions
}

SQS_CHUNK_BYTES = 64 * 1024
