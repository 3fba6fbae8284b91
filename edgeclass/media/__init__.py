"""Reading media: image decoding and headers, the one preprocessing path, input listing, video and live readers.

Nothing here imports the run stage (edgeclass.run): producers do not know their consumers."""
