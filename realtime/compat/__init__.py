"""Stand-ins for other libraries' landmark APIs, so code written for them runs on fkd with one changed
import: ``from fkd.realtime.compat import dlib`` and ``from fkd.realtime.compat import face_recognition``.
"""
