"""Layer 3: the Kafka gateway, the only code that talks to Kafka."""

from ecap_ops.gateway.client import KafkaGateway

__all__ = ["KafkaGateway"]
