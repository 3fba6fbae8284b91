"""Building models: timm/checkpoint -> OpenVINO IR -> NNCF INT8, metadata in rt_info, the INT8 gate."""
