"""Many photos and videos at once: SOURCE expansion, the per-photo and per-video work, and the
ways of spreading it (local processes, Ray) with resumable shards.
"""
