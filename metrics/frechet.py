"""Fréchet distances between Gaussian fits of feature sets (FID: Heusel et al. 2017, eq. 6).

FD = |mu_1 - mu_2|^2 + Tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2)).
"""

import numpy as np

from metrics import detectors, features

FID_DEFAULT_GEN = 50000


def trace_sqrt_product(cov1, cov2) -> float:
    """Tr((S_1 S_2)^(1/2)) for symmetric PSD S_1, S_2.

    (S_1 S_2)^(1/2) has the eigenvalues of the symmetric PSD M = S_1^(1/2) S_2 S_1^(1/2), so two
    symmetric eigendecompositions replace a general matrix square root: faster (seconds for
    2048 dims, where sqrtm can take a minute) and stable for singular covariances.
    """
    w1, v1 = np.linalg.eigh(cov1)
    root1 = (v1 * np.sqrt(np.clip(w1, 0, None))) @ v1.T
    eig = np.linalg.eigvalsh(root1 @ cov2 @ root1)
    return float(np.sqrt(np.clip(eig, 0, None)).sum())


def frechet_distance(mu1, cov1, mu2, cov2) -> float:
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    cov1, cov2 = np.asarray(cov1, np.float64), np.asarray(cov2, np.float64)
    mean_term = np.square(mu1 - mu2).sum()
    return float(mean_term + np.trace(cov1) + np.trace(cov2) - 2 * trace_sqrt_product(cov1, cov2))


def fd_from_stats(real: features.FeatureStats, gen: features.FeatureStats) -> float:
    mu_r, cov_r = real.get_mean_cov()
    mu_g, cov_g = gen.get_mean_cov()
    return frechet_distance(mu_g, cov_g, mu_r, cov_r)


def inception_features(opts):
    """(feature function on uint8 images, detector identity) for the Inception-v3 pool features."""
    det = detectors.get_detector('inception', opts.detector_dir, opts.device)
    return (lambda img: det(img.to(opts.device), return_features=True)), det.digest


def _fd_of_features(opts, fn, det_id, features_name, max_real, num_gen) -> float:
    """Frechet distance between real and generated feature statistics of one detector."""
    real = features.real_feature_stats(opts, fn, det_id, capture_mean_cov=True,
                                       max_items=opts.real_count(max_real), features=features_name)
    gen = features.generated_feature_stats(opts, fn, opts.gen_count(num_gen), capture_mean_cov=True)
    return fd_from_stats(real, gen)


def compute_fid(opts, max_real=None, num_gen=FID_DEFAULT_GEN) -> dict:
    fn, det_id = inception_features(opts)
    return dict(fid=_fd_of_features(opts, fn, det_id, 'inception_pool', max_real, num_gen))


def mobilenet_features(opts):
    """(feature function on uint8 images, weights identity) for the 1280-d MobileNetV2 features."""
    from metrics import mobilenet_v2
    net = mobilenet_v2.load_mobilenet_v2(opts.detector_dir, opts.device)
    digest = detectors.file_digest(mobilenet_v2.find_weights(opts.detector_dir))
    return (lambda img: net.pooled_features(mobilenet_v2.preprocess(img.to(opts.device)))), digest


def compute_fd_mobilenet(opts, max_real=None, num_gen=FID_DEFAULT_GEN) -> dict:
    fn, det_id = mobilenet_features(opts)
    return dict(fd_mobilenet=_fd_of_features(opts, fn, det_id, 'mobilenet_v2_pool', max_real, num_gen))
