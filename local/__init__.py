"""The pipeline on one machine: MQTT broker, simulated fleet, rule bridge, moto's server and a poller."""
