"""MQTT publishing: broker URLs, the paho client wrapper, and the outbox forwarder."""
