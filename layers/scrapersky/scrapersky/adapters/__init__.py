"""Adapters: the ports implemented on AWS (DynamoDB, SQS) and HTTP (requests)."""
