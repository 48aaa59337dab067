# Standby data: KMS keys, Cloud Storage buckets (bundles; checkpoints under a locked retention
# policy, the counterpart of S3 Object Lock COMPLIANCE), service accounts with HMAC keys for the
# S3-compatible XML API, Secret Manager secrets for the keys, and Cloud SQL for PostgreSQL.

data "google_project" "this" {
  project_id = var.project
}

data "google_storage_project_service_account" "gcs" {
  project = var.project
}

resource "google_kms_key_ring" "this" {
  name     = var.prefix
  location = var.region
}

resource "google_kms_crypto_key" "this" {
  for_each        = toset(["storage", "sql", "secrets", "gke"])
  name            = "${var.prefix}-${each.key}"
  key_ring        = google_kms_key_ring.this.id
  rotation_period = "7776000s"

  lifecycle {
    prevent_destroy = true
  }
}

resource "google_kms_crypto_key_iam_member" "gcs" {
  crypto_key_id = google_kms_crypto_key.this["storage"].id
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = "serviceAccount:${data.google_storage_project_service_account.gcs.email_address}"
}

resource "google_project_service_identity" "sql" {
  provider = google-beta
  project  = var.project
  service  = "sqladmin.googleapis.com"
}

resource "google_kms_crypto_key_iam_member" "sql" {
  crypto_key_id = google_kms_crypto_key.this["sql"].id
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = "serviceAccount:${google_project_service_identity.sql.email}"
}

resource "google_project_service_identity" "secrets" {
  provider = google-beta
  project  = var.project
  service  = "secretmanager.googleapis.com"
}

resource "google_kms_crypto_key_iam_member" "secrets" {
  crypto_key_id = google_kms_crypto_key.this["secrets"].id
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = "serviceAccount:${google_project_service_identity.secrets.email}"
}

resource "google_kms_crypto_key_iam_member" "gke" {
  crypto_key_id = google_kms_crypto_key.this["gke"].id
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = "serviceAccount:service-${data.google_project.this.number}@container-engine-robot.iam.gserviceaccount.com"
}

# --- buckets -----------------------------------------------------------------------------------
resource "google_storage_bucket" "logs" {
  # checkov:skip=CKV_GCP_62: this is the access-log bucket; logging it into itself would loop
  name                        = "${var.prefix}-access-logs-${data.google_project.this.number}"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  versioning {
    enabled = true
  }

  encryption {
    default_kms_key_name = google_kms_crypto_key.this["storage"].id
  }

  lifecycle_rule {
    condition {
      age = 400
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_kms_crypto_key_iam_member.gcs]
}

resource "google_storage_bucket" "bundles" {
  name                        = "${var.prefix}-bundles-${data.google_project.this.number}"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  versioning {
    enabled = true
  }

  encryption {
    default_kms_key_name = google_kms_crypto_key.this["storage"].id
  }

  logging {
    log_bucket        = google_storage_bucket.logs.name
    log_object_prefix = "bundles/"
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 90
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      age = 2
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }

  depends_on = [google_kms_crypto_key_iam_member.gcs]
}

resource "google_storage_bucket" "checkpoints" {
  name                        = "${var.prefix}-audit-checkpoints-${data.google_project.this.number}"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  # Locked: no object can be deleted or replaced before it is this old, and the policy itself
  # can no longer be shortened or removed.
  retention_policy {
    is_locked        = true
    retention_period = var.checkpoint_retention_days * 86400
  }

  versioning {
    enabled = true
  }

  encryption {
    default_kms_key_name = google_kms_crypto_key.this["storage"].id
  }

  logging {
    log_bucket        = google_storage_bucket.logs.name
    log_object_prefix = "checkpoints/"
  }

  lifecycle_rule {
    condition {
      age = 1
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }

  depends_on = [google_kms_crypto_key_iam_member.gcs]
}

# --- service accounts and HMAC keys (S3-compatible XML API) ------------------------------------
# readroom's S3 client (aws-sdk-s3) talks to https://storage.googleapis.com with these keys,
# unchanged. The HMAC secrets are copied into Secret Manager as AWS shared-credentials files,
# which the chart mounts (config.store.credentialsSecret). They are in the Terraform state too:
# keep the state bucket as restricted as the secrets.
resource "google_service_account" "server" {
  account_id   = "${var.prefix}-server"
  display_name = "readroom API servers (standby)"
}

resource "google_service_account" "worker" {
  account_id   = "${var.prefix}-worker"
  display_name = "readroom streaming workers (standby)"
}

resource "google_storage_hmac_key" "server" {
  service_account_email = google_service_account.server.email
}

resource "google_storage_hmac_key" "worker" {
  service_account_email = google_service_account.worker.email
}

# Server: write and read bundles (and delete a failed ingest), write and read checkpoints.
resource "google_storage_bucket_iam_member" "server_bundles" {
  bucket = google_storage_bucket.bundles.name
  role   = "roles/storage.objectUser"
  member = "serviceAccount:${google_service_account.server.email}"
}

resource "google_storage_bucket_iam_member" "server_checkpoints_create" {
  bucket = google_storage_bucket.checkpoints.name
  role   = "roles/storage.objectCreator"
  member = "serviceAccount:${google_service_account.server.email}"
}

resource "google_storage_bucket_iam_member" "server_checkpoints_read" {
  bucket = google_storage_bucket.checkpoints.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.server.email}"
}

# Worker: read bundles, nothing else.
resource "google_storage_bucket_iam_member" "worker_bundles" {
  bucket = google_storage_bucket.bundles.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.worker.email}"
}

# --- Secret Manager -----------------------------------------------------------------------------
# Values of the key secrets are put in out of band (docs/deploy.md "Keys"), the same material as
# in AWS Secrets Manager: the standby's workers must decrypt the replicated bundles.
locals {
  secrets = {
    worker-keys         = google_service_account.worker.email
    worker-s3           = google_service_account.worker.email
    server-keys         = google_service_account.server.email
    server-s3           = google_service_account.server.email
    database-url        = google_service_account.server.email
    dms-source-password = ""
  }
}

resource "google_secret_manager_secret" "this" {
  for_each  = local.secrets
  secret_id = "${var.prefix}-${each.key}"

  replication {
    user_managed {
      replicas {
        location = var.region
        customer_managed_encryption {
          kms_key_name = google_kms_crypto_key.this["secrets"].id
        }
      }
    }
  }

  depends_on = [google_kms_crypto_key_iam_member.secrets]
}

# Each secret is readable by its own component only: the server's Google service account has
# no binding on worker-keys, and the worker's none on the server's.
resource "google_secret_manager_secret_iam_member" "accessor" {
  for_each  = { for k, v in local.secrets : k => v if v != "" }
  secret_id = google_secret_manager_secret.this[each.key].id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${each.value}"
}

resource "google_secret_manager_secret_version" "server_s3" {
  secret      = google_secret_manager_secret.this["server-s3"].id
  secret_data = "[default]\naws_access_key_id = ${google_storage_hmac_key.server.access_id}\naws_secret_access_key = ${google_storage_hmac_key.server.secret}\n"
}

resource "google_secret_manager_secret_version" "worker_s3" {
  secret      = google_secret_manager_secret.this["worker-s3"].id
  secret_data = "[default]\naws_access_key_id = ${google_storage_hmac_key.worker.access_id}\naws_secret_access_key = ${google_storage_hmac_key.worker.secret}\n"
}

# --- Cloud SQL for PostgreSQL -----------------------------------------------------------------
# Regional (HA), private address only, TLS only, CMEK, point-in-time recovery. While AWS is
# primary it is the destination of the continuous Database Migration Service job (read-only);
# the failover promotes it.
resource "google_sql_database_instance" "this" {
  # checkov:skip=CKV_GCP_79: the standby runs the same major version as the RDS primary (17), so a failback needs no upgrade; move both together
  # checkov:skip=CKV_GCP_6: ssl_mode ENCRYPTED_ONLY refuses every unencrypted connection; client certificates (TRUSTED_CLIENT_CERTIFICATE_REQUIRED) would have to be issued to every pod, and require_ssl is the deprecated spelling of the same thing
  name                = "${var.prefix}-pg"
  region              = var.region
  database_version    = "POSTGRES_17"
  deletion_protection = true
  encryption_key_name = google_kms_crypto_key.this["sql"].id

  settings {
    tier              = var.db_tier
    edition           = "ENTERPRISE"
    availability_type = "REGIONAL"
    disk_autoresize   = true
    disk_type         = "PD_SSD"

    ip_configuration {
      ipv4_enabled    = false
      private_network = var.network_id
      ssl_mode        = "ENCRYPTED_ONLY"
    }

    backup_configuration {
      enabled                        = true
      point_in_time_recovery_enabled = true
      transaction_log_retention_days = 7
      backup_retention_settings {
        retained_backups = 35
      }
    }

    insights_config {
      query_insights_enabled  = true
      record_application_tags = false
      record_client_address   = false
    }

    maintenance_window {
      day  = 7
      hour = 3
    }

    database_flags {
      name  = "log_checkpoints"
      value = "on"
    }
    database_flags {
      name  = "log_connections"
      value = "on"
    }
    database_flags {
      name  = "log_disconnections"
      value = "on"
    }
    database_flags {
      name  = "log_lock_waits"
      value = "on"
    }
    database_flags {
      name  = "log_duration"
      value = "on"
    }
    database_flags {
      name  = "log_hostname"
      value = "on"
    }
    database_flags {
      name  = "log_temp_files"
      value = "0"
    }
    database_flags {
      name  = "log_min_messages"
      value = "error"
    }
    database_flags {
      name  = "log_min_error_statement"
      value = "error"
    }
    # No statement text with parameters in the logs.
    database_flags {
      name  = "log_min_duration_statement"
      value = "-1"
    }
    database_flags {
      name  = "log_statement"
      value = "ddl"
    }
    database_flags {
      name  = "cloudsql.enable_pgaudit"
      value = "on"
    }
    database_flags {
      name  = "cloudsql.logical_decoding"
      value = "on"
    }
  }

  depends_on = [google_kms_crypto_key_iam_member.sql]
}
