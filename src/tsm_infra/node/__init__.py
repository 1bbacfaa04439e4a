"""Code that runs on a TSM node's EC2 instance: stdlib only, Python 3.9, shipped by cfn-init."""
