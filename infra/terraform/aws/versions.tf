# readroom on AWS (primary). Never planned on the machine this was written on: no provider can be
# downloaded there, so `terraform init/validate/plan` were not run (docs/deploy.md). scripts/check-infra
# parses every file (python-hcl2), runs checkov over it, and `terraform fmt -check` where a
# terraform binary exists.
terraform {
  required_version = ">= 1.6.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
  }

  # State in S3 with locking (the bucket and its KMS key are bootstrapped by hand, once).
  backend "s3" {
    key          = "readroom/aws/terraform.tfstate"
    encrypt      = true
    use_lockfile = true
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      Project     = "readroom"
      Environment = var.environment
      ManagedBy   = "terraform"
    }
  }
}

# The second region: the in-AWS replica of the buckets (first DR step; the GCP standby is the
# cross-provider one).
provider "aws" {
  alias  = "replica"
  region = var.replica_region

  default_tags {
    tags = {
      Project     = "readroom"
      Environment = var.environment
      ManagedBy   = "terraform"
    }
  }
}
