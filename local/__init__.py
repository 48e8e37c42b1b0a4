"""The pipeline on one machine: MQTT broker, simulated fleet, rule bridge, moto's server
(harness/moto_server.py) and a poller."""
