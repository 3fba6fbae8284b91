"""Home Assistant's MQTT sensor discovery schema, as HA's docs list it (integrations/sensor.mqtt
and "MQTT Discovery": the keys, the device and origin blocks, the discovery topic
``<discovery_prefix>/<component>/[<node_id>/]<object_id>/config``), for the publishing tests."""

from __future__ import annotations

import re

HA_SENSOR_KEYS = {
    "availability", "availability_mode", "availability_template", "availability_topic", "default_entity_id",
    "device", "device_class", "enabled_by_default", "encoding", "entity_category", "entity_picture",
    "expire_after", "force_update", "icon", "json_attributes_template", "json_attributes_topic",
    "last_reset_value_template", "name", "object_id", "options", "origin", "payload_available",
    "payload_not_available", "platform", "qos", "state_class", "state_topic", "suggested_display_precision",
    "unique_id", "unit_of_measurement", "value_template",
}
HA_SENSOR_REQUIRED = {"state_topic"}
HA_DEVICE_KEYS = {"configuration_url", "connections", "hw_version", "identifiers", "manufacturer", "model",
                  "model_id", "name", "serial_number", "suggested_area", "sw_version", "via_device"}
HA_ORIGIN_KEYS = {"name", "sw_version", "support_url"}
HA_TOPIC = re.compile(r"^homeassistant/(?P<component>\w+)/(?:(?P<node_id>[a-zA-Z0-9_-]+)/)?"
                      r"(?P<object_id>[a-zA-Z0-9_-]+)/config$")


def ha_sensor_errors(topic: str, config: dict) -> list[str]:
    errors = []
    m = HA_TOPIC.match(topic)
    if not m or m["component"] != "sensor":
        errors.append(f"discovery topic {topic}")
    errors += [f"unknown key {k}" for k in set(config) - HA_SENSOR_KEYS]
    errors += [f"missing {k}" for k in HA_SENSOR_REQUIRED - set(config)]
    if "availability" in config and "availability_topic" in config:
        errors.append("availability and availability_topic together")
    for key in ("state_topic", "json_attributes_topic", "availability_topic"):
        if key in config and (not isinstance(config[key], str) or set("+#") & set(config[key])):
            errors.append(f"{key} is not a topic")
    device = config.get("device")
    if device is not None:
        errors += [f"unknown device key {k}" for k in set(device) - HA_DEVICE_KEYS]
        if not device.get("identifiers") and not device.get("connections"):
            errors.append("device without identifiers or connections")
        if "unique_id" not in config:
            errors.append("device without unique_id")
    origin = config.get("origin")
    if origin is not None and ("name" not in origin or set(origin) - HA_ORIGIN_KEYS):
        errors.append("origin")
    if not all(isinstance(config.get(k, ""), str) for k in ("name", "unique_id", "value_template", "icon")):
        errors.append("a string key is not a string")
    return errors


