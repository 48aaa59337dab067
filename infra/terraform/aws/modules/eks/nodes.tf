# Node groups, their launch templates (IMDSv2 only, one hop, encrypted root volumes, no SSH) and
# security groups.

resource "aws_iam_role" "node" {
  name = "${var.prefix}-eks-node"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "ec2.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

resource "aws_iam_role_policy_attachment" "node" {
  for_each   = toset(["AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryReadOnly"])
  role       = aws_iam_role.node.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/${each.value}"
}

# --- security groups ---------------------------------------------------------------------------
resource "aws_security_group" "api_nodes" {
  name        = "${var.prefix}-api-nodes"
  description = "readroom API nodes: servers, ingress controller, monitoring"
  vpc_id      = var.vpc_id
}

resource "aws_security_group" "worker_nodes" {
  name        = "${var.prefix}-worker-nodes"
  description = "readroom worker nodes: control port from API nodes only, media UDP from anywhere"
  vpc_id      = var.vpc_id
}

# Workers post heartbeats and events to the servers (pods on API nodes, VPC addresses).
resource "aws_vpc_security_group_ingress_rule" "api_from_workers" {
  security_group_id            = aws_security_group.api_nodes.id
  description                  = "readroom server HTTP (internal worker route) from worker nodes"
  referenced_security_group_id = aws_security_group.worker_nodes.id
  from_port                    = 8080
  to_port                      = 8080
  ip_protocol                  = "tcp"
}

# The worker control API and metrics: from the API nodes only (servers, Prometheus). With
# host-network workers, this rule is what keeps the control port private.
resource "aws_vpc_security_group_ingress_rule" "worker_control_from_api" {
  security_group_id            = aws_security_group.worker_nodes.id
  description                  = "readroom worker control API from API nodes"
  referenced_security_group_id = aws_security_group.api_nodes.id
  from_port                    = 7443
  to_port                      = 7443
  ip_protocol                  = "tcp"
}

resource "aws_vpc_security_group_ingress_rule" "worker_metrics_from_api" {
  security_group_id            = aws_security_group.worker_nodes.id
  description                  = "readroom worker metrics from Prometheus on API nodes"
  referenced_security_group_id = aws_security_group.api_nodes.id
  from_port                    = 9464
  to_port                      = 9464
  ip_protocol                  = "tcp"
}

resource "aws_vpc_security_group_ingress_rule" "worker_media" {
  security_group_id = aws_security_group.worker_nodes.id
  description       = "WebRTC media (DTLS-SRTP over UDP) from graders' browsers and TURN relays"
  cidr_ipv4         = "0.0.0.0/0"
  from_port         = var.media_udp_ports.from
  to_port           = var.media_udp_ports.to
  ip_protocol       = "udp"
}

resource "aws_vpc_security_group_ingress_rule" "database_from_api" {
  security_group_id            = var.database_sg_id
  description                  = "PostgreSQL from the API nodes (readroom servers) only"
  referenced_security_group_id = aws_security_group.api_nodes.id
  from_port                    = 5432
  to_port                      = 5432
  ip_protocol                  = "tcp"
}

# Egress: inside the VPC, HTTPS anywhere (ECR, S3, STS, Secrets Manager, OIDC issuers), and for
# workers UDP media to browsers plus TCP to TURN relays.
resource "aws_vpc_security_group_egress_rule" "api_vpc" {
  security_group_id = aws_security_group.api_nodes.id
  description       = "Inside the VPC (pods, database, workers)"
  cidr_ipv4         = var.vpc_cidr
  ip_protocol       = "-1"
}

resource "aws_vpc_security_group_egress_rule" "api_https" {
  security_group_id = aws_security_group.api_nodes.id
  description       = "HTTPS: AWS APIs, container registry, OIDC identity providers"
  cidr_ipv4         = "0.0.0.0/0"
  from_port         = 443
  to_port           = 443
  ip_protocol       = "tcp"
}

resource "aws_vpc_security_group_egress_rule" "worker_vpc" {
  security_group_id = aws_security_group.worker_nodes.id
  description       = "Inside the VPC (servers, DNS); the database's own group refuses workers"
  cidr_ipv4         = var.vpc_cidr
  ip_protocol       = "-1"
}

resource "aws_vpc_security_group_egress_rule" "worker_https" {
  security_group_id = aws_security_group.worker_nodes.id
  description       = "HTTPS: S3, STS, Secrets Manager, container registry"
  cidr_ipv4         = "0.0.0.0/0"
  from_port         = 443
  to_port           = 443
  ip_protocol       = "tcp"
}

resource "aws_vpc_security_group_egress_rule" "worker_media" {
  security_group_id = aws_security_group.worker_nodes.id
  description       = "WebRTC media and STUN/TURN over UDP"
  cidr_ipv4         = "0.0.0.0/0"
  from_port         = 1024
  to_port           = 65535
  ip_protocol       = "udp"
}

resource "aws_vpc_security_group_egress_rule" "worker_turn_tcp" {
  security_group_id = aws_security_group.worker_nodes.id
  description       = "TURN over TCP/TLS"
  cidr_ipv4         = "0.0.0.0/0"
  from_port         = 3478
  to_port           = 5349
  ip_protocol       = "tcp"
}

# --- launch templates --------------------------------------------------------------------------
resource "aws_launch_template" "api" {
  name_prefix            = "${var.prefix}-api-"
  update_default_version = true
  vpc_security_group_ids = [aws_eks_cluster.this.vpc_config[0].cluster_security_group_id, aws_security_group.api_nodes.id]

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  block_device_mappings {
    device_name = "/dev/xvda"
    ebs {
      volume_size           = 50
      volume_type           = "gp3"
      encrypted             = true
      delete_on_termination = true
    }
  }
}

resource "aws_launch_template" "worker" {
  name_prefix            = "${var.prefix}-worker-"
  update_default_version = true
  vpc_security_group_ids = [aws_eks_cluster.this.vpc_config[0].cluster_security_group_id, aws_security_group.worker_nodes.id]

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  block_device_mappings {
    device_name = "/dev/xvda"
    ebs {
      volume_size           = 30
      volume_type           = "gp3"
      encrypted             = true
      delete_on_termination = true
    }
  }
}

# --- node groups -------------------------------------------------------------------------------
resource "aws_eks_node_group" "api" {
  cluster_name    = aws_eks_cluster.this.name
  node_group_name = "api"
  node_role_arn   = aws_iam_role.node.arn
  subnet_ids      = var.private_subnet_ids
  instance_types  = [var.api_nodes.instance_type]
  ami_type        = "AL2023_x86_64_STANDARD"

  scaling_config {
    min_size     = var.api_nodes.min
    desired_size = var.api_nodes.desired
    max_size     = var.api_nodes.max
  }

  update_config {
    max_unavailable = 1
  }

  launch_template {
    id      = aws_launch_template.api.id
    version = aws_launch_template.api.latest_version
  }

  labels = { "readroom.io/pool" = "api" }

  depends_on = [aws_iam_role_policy_attachment.node, aws_eks_addon.vpc_cni]

  lifecycle {
    ignore_changes = [scaling_config[0].desired_size]
  }
}

resource "aws_eks_node_group" "worker" {
  cluster_name    = aws_eks_cluster.this.name
  node_group_name = "worker"
  node_role_arn   = aws_iam_role.node.arn
  subnet_ids      = var.public_subnet_ids
  instance_types  = [var.worker_nodes.instance_type]
  ami_type        = "AL2023_x86_64_STANDARD"

  scaling_config {
    min_size     = var.worker_nodes.min
    desired_size = var.worker_nodes.desired
    max_size     = var.worker_nodes.max
  }

  # One node at a time: each drain ends (after worker.drainSecs) the sessions of one worker.
  update_config {
    max_unavailable = 1
  }

  launch_template {
    id      = aws_launch_template.worker.id
    version = aws_launch_template.worker.latest_version
  }

  labels = { "readroom.io/pool" = "worker" }

  taint {
    key    = "readroom.io/worker"
    value  = "true"
    effect = "NO_SCHEDULE"
  }

  depends_on = [aws_iam_role_policy_attachment.node, aws_eks_addon.vpc_cni]

  lifecycle {
    ignore_changes = [scaling_config[0].desired_size]
  }
}
