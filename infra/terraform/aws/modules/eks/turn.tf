# The TURN relay node (coturn from the chart, nodeSelector readroom.io/turn=true): one node in
# the first public subnet with a fixed Elastic IP, which the node associates to itself at boot
# (a managed node group cannot attach an EIP). coturn announces it with --external-ip.

resource "aws_eip" "turn" {
  # checkov:skip=CKV2_AWS_19: the TURN node associates this address to itself at boot (user data below); a managed node group has no instance id to attach it to here
  count  = var.turn.enabled ? 1 : 0
  domain = "vpc"
  tags   = { Name = "${var.prefix}-turn" }
}

resource "aws_security_group" "turn" {
  count       = var.turn.enabled ? 1 : 0
  name        = "${var.prefix}-turn"
  description = "coturn: TURN/STUN 3478, TURN over TLS 5349 (published on 443 by the NLB), relay ports"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "turn" {
  for_each = var.turn.enabled ? {
    stun_udp  = { proto = "udp", from = 3478, to = 3478, what = "STUN/TURN over UDP" }
    turn_tcp  = { proto = "tcp", from = 3478, to = 3478, what = "TURN over TCP" }
    turn_tls  = { proto = "tcp", from = 5349, to = 5349, what = "TURN over TLS (NLB 443)" }
    relay_udp = { proto = "udp", from = var.turn.relay_from, to = var.turn.relay_to, what = "relay ports" }
  } : {}
  security_group_id = aws_security_group.turn[0].id
  description       = "coturn ${each.value.what}"
  cidr_ipv4         = "0.0.0.0/0"
  from_port         = each.value.from
  to_port           = each.value.to
  ip_protocol       = each.value.proto
}

resource "aws_vpc_security_group_egress_rule" "turn_relay" {
  count             = var.turn.enabled ? 1 : 0
  security_group_id = aws_security_group.turn[0].id
  description       = "Relayed media to workers' public addresses and browsers"
  cidr_ipv4         = "0.0.0.0/0"
  from_port         = 1024
  to_port           = 65535
  ip_protocol       = "udp"
}

resource "aws_vpc_security_group_egress_rule" "turn_https" {
  count             = var.turn.enabled ? 1 : 0
  security_group_id = aws_security_group.turn[0].id
  description       = "HTTPS: AWS APIs, container registry"
  cidr_ipv4         = "0.0.0.0/0"
  from_port         = 443
  to_port           = 443
  ip_protocol       = "tcp"
}

resource "aws_vpc_security_group_egress_rule" "turn_vpc" {
  count             = var.turn.enabled ? 1 : 0
  security_group_id = aws_security_group.turn[0].id
  description       = "Inside the VPC (kubelet to control plane, DNS)"
  cidr_ipv4         = var.vpc_cidr
  ip_protocol       = "-1"
}

resource "aws_iam_role" "turn_node" {
  count = var.turn.enabled ? 1 : 0
  name  = "${var.prefix}-eks-turn-node"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "ec2.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

resource "aws_iam_role_policy_attachment" "turn_node" {
  for_each   = var.turn.enabled ? toset(["AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryReadOnly"]) : toset([])
  role       = aws_iam_role.turn_node[0].name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/${each.value}"
}

resource "aws_iam_role_policy" "turn_associate" {
  count = var.turn.enabled ? 1 : 0
  name  = "associate-turn-address"
  role  = aws_iam_role.turn_node[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect = "Allow"
      Action = ["ec2:AssociateAddress"]
      # This address only; onto an instance of the account (the node's own id is not known here).
      Resource = ["arn:${data.aws_partition.current.partition}:ec2:*:${data.aws_caller_identity.current.account_id}:elastic-ip/${aws_eip.turn[0].allocation_id}", "arn:${data.aws_partition.current.partition}:ec2:*:${data.aws_caller_identity.current.account_id}:instance/*"]
    }]
  })
}

resource "aws_launch_template" "turn" {
  count                  = var.turn.enabled ? 1 : 0
  name_prefix            = "${var.prefix}-turn-"
  update_default_version = true
  vpc_security_group_ids = [aws_eks_cluster.this.vpc_config[0].cluster_security_group_id, aws_security_group.turn[0].id]

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  block_device_mappings {
    device_name = "/dev/xvda"
    ebs {
      volume_size           = 20
      volume_type           = "gp3"
      encrypted             = true
      delete_on_termination = true
    }
  }

  # AL2023 runs shell parts of a MIME multi-part user data before joining the cluster.
  user_data = base64encode(<<-EOT
    MIME-Version: 1.0
    Content-Type: multipart/mixed; boundary="BOUNDARY"

    --BOUNDARY
    Content-Type: text/x-shellscript; charset="us-ascii"

    #!/bin/bash
    set -euo pipefail
    token=$(curl -sX PUT http://169.254.169.254/latest/api/token -H 'X-aws-ec2-metadata-token-ttl-seconds: 60')
    id=$(curl -s -H "X-aws-ec2-metadata-token: $token" http://169.254.169.254/latest/meta-data/instance-id)
    aws ec2 associate-address --allocation-id ${aws_eip.turn[0].allocation_id} --instance-id "$id" --allow-reassociation

    --BOUNDARY--
  EOT
  )
}

resource "aws_eks_node_group" "turn" {
  count           = var.turn.enabled ? 1 : 0
  cluster_name    = aws_eks_cluster.this.name
  node_group_name = "turn"
  node_role_arn   = aws_iam_role.turn_node[0].arn
  subnet_ids      = [var.public_subnet_ids[0]]
  instance_types  = [var.turn.instance_type]
  ami_type        = "AL2023_x86_64_STANDARD"

  scaling_config {
    min_size     = 1
    desired_size = 1
    max_size     = 1
  }

  update_config {
    max_unavailable = 1
  }

  launch_template {
    id      = aws_launch_template.turn[0].id
    version = aws_launch_template.turn[0].latest_version
  }

  labels = { "readroom.io/turn" = "true" }

  taint {
    key    = "readroom.io/worker"
    value  = "true"
    effect = "NO_SCHEDULE"
  }

  depends_on = [aws_iam_role_policy_attachment.turn_node, aws_eks_addon.vpc_cni]
}
