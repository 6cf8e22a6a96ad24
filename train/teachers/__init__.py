"""Second targets beside the labels: distillation from a trained fkd, dlib's 68-point teacher, and
the labels' left-right offset measured once training ends.
"""
