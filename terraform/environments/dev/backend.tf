# State in S3, locked with the DynamoDB table of the deployment guide. Both exist before the first
# init (they are shared by all environments and not managed here).
terraform {
  backend "s3" {
    bucket         = "ml-recommendation-terraform-state"
    key            = "splitgate/dev/terraform.tfstate"
    region         = "us-east-1"
    encrypt        = true
    dynamodb_table = "terraform-state-lock"
  }
}
