"""Where fkd-live's and fkd-predict's results go: the overlay and its window, video files, JSON records
(file, pipe, UDP), the browser server and its page, and avatar apps over VMC.
"""
