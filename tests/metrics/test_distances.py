"""FD / KID / precision-recall / IS / SWD against closed forms and brute force."""

import itertools

import numpy as np
import pytest
import scipy.linalg
import torch

from metrics import features, frechet, inception_score, kid, precision_recall, swd


def test_fd_of_a_set_with_itself_is_zero():
    x = np.random.default_rng(0).normal(size=[500, 8])
    stats = features.FeatureStats(capture_mean_cov=True)
    stats.append(torch.from_numpy(x))
    assert abs(frechet.fd_from_stats(stats, stats)) < 1e-8


def test_fd_closed_form_for_gaussians():
    rng = np.random.default_rng(1)
    d = 6
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    a, b = rng.normal(size=[d, d]), rng.normal(size=[d, d])
    cov1, cov2 = a @ a.T + np.eye(d), b @ b.T + np.eye(d)
    # Definition with a general matrix square root (Heusel et al. 2017, eq. 6).
    root = np.real(scipy.linalg.sqrtm(cov1 @ cov2))
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(cov1 + cov2 - 2 * root)
    assert frechet.frechet_distance(mu1, cov1, mu2, cov2) == pytest.approx(expected, rel=1e-9)
    # Diagonal covariances: FD = |mu1 - mu2|^2 + sum (sigma1 - sigma2)^2.
    s1, s2 = rng.uniform(0.5, 2, d), rng.uniform(0.5, 2, d)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((s1 - s2) ** 2)
    assert frechet.frechet_distance(mu1, np.diag(s1 ** 2), mu2, np.diag(s2 ** 2)) == pytest.approx(expected)


def test_fd_with_singular_covariances_is_finite_and_zero_for_equal_sets():
    x = np.random.default_rng(6).normal(size=[5, 50])                      # 5 samples, 50 dims
    stats = features.FeatureStats(capture_mean_cov=True)
    stats.append(torch.from_numpy(x))
    trace = np.trace(stats.get_mean_cov()[1])                               # ~ 40
    assert abs(frechet.fd_from_stats(stats, stats)) < 1e-6 * trace


def test_fd_of_sampled_gaussians_approaches_closed_form():
    rng = np.random.default_rng(2)
    n, d, shift, scale = 20000, 4, 0.5, 1.5
    real, gen = features.FeatureStats(capture_mean_cov=True), features.FeatureStats(capture_mean_cov=True)
    real.append(torch.from_numpy(rng.normal(size=[n, d])))
    for chunk in np.split(rng.normal(size=[n, d]) * scale + shift, 4):    # batches accumulate
        gen.append(torch.from_numpy(chunk))
    expected = d * shift ** 2 + d * (scale - 1) ** 2
    assert frechet.fd_from_stats(real, gen) == pytest.approx(expected, abs=0.05)


def test_mean_cov_matches_numpy():
    x = np.random.default_rng(3).normal(size=[300, 5])
    stats = features.FeatureStats(capture_mean_cov=True, capture_all=True, max_items=250)
    for chunk in np.split(x, 3):
        stats.append(torch.from_numpy(chunk))
    mean, cov = stats.get_mean_cov()
    assert stats.num_items == 250 and stats.get_all().shape == (250, 5)
    assert np.allclose(mean, x[:250].mean(0)) and np.allclose(cov, np.cov(x[:250].T, bias=True))


def _brute_force_mmd2(x, y):
    k = lambda a, b: (np.dot(a, b) / len(a) + 1) ** 3
    m = len(x)
    xx = sum(k(x[i], x[j]) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_kid_matches_brute_force_unbiased_mmd():
    rng = np.random.default_rng(4)
    real, gen = rng.normal(size=[30, 5]), rng.normal(size=[30, 5]) + 0.7
    expected = _brute_force_mmd2(gen, real)
    # One subset holding every sample: the permutation does not matter.
    assert kid.kid_from_features(real, gen, num_subsets=1, max_subset_size=30) == pytest.approx(expected, rel=1e-9)
    assert kid.kid_from_features(real, gen, num_subsets=3, max_subset_size=30) == pytest.approx(expected, rel=1e-9)
    same = kid.kid_from_features(real, rng.normal(size=[30, 5]), num_subsets=20, max_subset_size=30)
    assert abs(same) < 0.2 * expected


def _brute_force_coverage(manifold, probes, k):
    dist = lambda a, b: np.sqrt(((a - b) ** 2).sum())
    radii = [sorted(dist(p, q) for q in manifold)[k] for p in manifold]     # index k: self is 0
    return np.mean([any(dist(x, m) <= r for m, r in zip(manifold, radii)) for x in probes])


def test_precision_recall_matches_brute_force():
    rng = np.random.default_rng(5)
    real, gen = rng.normal(size=[40, 3]), rng.normal(size=[35, 3]) * 1.5 + 0.8
    got = precision_recall.precision_recall(real, gen, k=3)
    assert got['precision'] == pytest.approx(_brute_force_coverage(real, gen, 3), abs=1e-6)
    assert got['recall'] == pytest.approx(_brute_force_coverage(gen, real, 3), abs=1e-6)
    assert 0 < got['precision'] < 1 and 0 < got['recall'] < 1
    same = precision_recall.precision_recall(real, real, k=3)
    assert same['precision'] == 1 and same['recall'] == 1


def test_inception_score_extremes():
    n, classes = 100, 10
    uniform = np.full([n, classes], 1 / classes)
    assert inception_score.inception_score(uniform, 1)[0] == pytest.approx(1.0)
    onehot = np.eye(classes)[np.arange(n) % classes] * (1 - 1e-9) + 1e-10
    assert inception_score.inception_score(onehot, 1)[0] == pytest.approx(classes, rel=1e-6)


def _texture_images(n=16, res=32, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.normal(size=[n, 3, res // 4, res // 4])
    img = torch.nn.functional.interpolate(torch.from_numpy(base), scale_factor=4, mode='bilinear')
    return (img * 40 + 128).clamp(0, 255).to(torch.uint8)


def test_swd_zero_for_identical_sets_and_grows_with_shift():
    real = _texture_images()
    same = swd.swd_images(real, real.clone(), nhoods_per_image=16)
    assert set(same) == {'swd', 'swd_32', 'swd_16'} and same['swd'] == pytest.approx(0, abs=1e-6)
    noise = torch.from_numpy(np.random.default_rng(9).normal(size=real.shape))
    scores = [swd.swd_images(real, (real.double() + s * noise).clamp(0, 255).to(torch.uint8), nhoods_per_image=16)['swd']
              for s in (4, 16, 48)]
    assert 0 < scores[0] < scores[1] < scores[2]


def test_laplacian_pyramid_reconstructs():
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    levels = swd.laplacian_pyramid(x)
    assert [l.shape[-1] for l in levels] == [32, 16]
    up = torch.zeros_like(x)
    up[:, :, ::2, ::2] = levels[1]
    assert torch.allclose(levels[0] + swd._blur(up, gain=16), x)
