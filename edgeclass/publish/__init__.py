"""``run --publish``: rows to MQTT (with Home Assistant discovery) and webhooks, at least once.

* :mod:`~edgeclass.publish.target`: the ``--publish`` URLs, checked before any work;
* :mod:`~edgeclass.publish.topics`: source ids, topics, payloads, discovery configs (pure);
* :mod:`~edgeclass.publish.outbox`: the durable pending set of one target (its file format);
* :mod:`~edgeclass.publish.sender`, :mod:`~edgeclass.publish.mqtt`,
  :mod:`~edgeclass.publish.webhook`: the threads that drain an outbox;
* :mod:`~edgeclass.publish.hub`: one run's publishing, the run layer's one entry point.

This package imports only ``edgeclass.errors`` and ``edgeclass.atomic`` from the rest of
edgeclass (rows arrive as column -> value mappings); ``edgeclass.run`` imports it, never the
reverse. paho-mqtt and httpx (the ``publish`` extra) are imported only when a target needs them.
"""
