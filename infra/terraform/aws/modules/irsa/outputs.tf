output "server_role_arn" {
  description = "Annotate the chart's server ServiceAccount with it (eks.amazonaws.com/role-arn)."
  value       = aws_iam_role.server.arn
}

output "worker_role_arn" {
  description = "Annotate the chart's worker ServiceAccount with it (eks.amazonaws.com/role-arn)."
  value       = aws_iam_role.worker.arn
}

output "transfer_role_arn" {
  description = "Role the GCP Storage Transfer Service assumes."
  value       = aws_iam_role.transfer.arn
}
