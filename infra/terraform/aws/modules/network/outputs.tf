output "vpc_id" {
  description = "VPC id."
  value       = aws_vpc.this.id
}

output "public_subnet_ids" {
  description = "Public subnets (load balancers, NAT, worker and TURN nodes)."
  value       = aws_subnet.public[*].id
}

output "public_subnet_cidrs" {
  description = "Public subnet ranges (the worker nodes' addresses)."
  value       = aws_subnet.public[*].cidr_block
}

output "private_subnet_ids" {
  description = "Private subnets (API nodes)."
  value       = aws_subnet.private[*].id
}

output "private_route_table_ids" {
  description = "Private and database route tables (the VPN to the GCP standby propagates into them)."
  value       = concat(aws_route_table.private[*].id, [aws_route_table.database.id])
}

output "database_subnet_ids" {
  description = "Database subnets."
  value       = aws_subnet.database[*].id
}

output "database_subnet_cidrs" {
  description = "Database subnet ranges."
  value       = aws_subnet.database[*].cidr_block
}

output "logs_kms_key_arn" {
  description = "KMS key for CloudWatch log groups."
  value       = aws_kms_key.logs.arn
}
