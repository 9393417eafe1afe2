"""A local stack for trying and testing the worker without AWS.

It starts moto in server mode as the AWS endpoint and an aiosmtpd server
that stores what it receives, creates the queues, buckets and tables the
worker expects, and sends SES-shaped notifications for .eml files.  The
demo, the end-to-end tests and the benchmark all use it.
"""
