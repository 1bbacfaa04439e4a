"""Lambda function sources shipped inline in the CloudFormation templates (stdlib + boto3 only)."""
