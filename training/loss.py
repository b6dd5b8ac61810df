"""StyleGAN2/3 training objective.

* Non-saturating logistic loss (Goodfellow et al. 2014, sec. 3): G minimises softplus(-D(G(z))),
  D minimises softplus(D(G(z))) + softplus(-D(x)).
* R1 regularisation on reals (Mescheder et al. 2018, eq. 9): gamma/2 * |grad_x D(x)|^2, applied
  lazily every `D_reg_interval` steps with its weight multiplied by the interval (StyleGAN2,
  sec. 3.1 "lazy regularization").
* Path-length regularisation (StyleGAN2, sec. 3.2, eq. 4): (|J_w^T y|_2 - a)^2 with y ~ N(0, I)/sqrt(HW)
  and `a` a running mean of the lengths; on a batch shrunk by `pl_batch_shrink`.
* Style mixing (StyleGAN, sec. 3.1): with probability `style_mixing_prob` the ws after a random
  crossover layer come from a second latent.
* StyleGAN3 discriminator blur (StyleGAN3, sec. 4 / appendix): the images D sees are blurred with
  a Gaussian whose sigma fades linearly from `blur_init_sigma` to 0 over `blur_fade_kimg`.
* ADA: `augment_pipe` (when given) is applied to every image D sees (Karras et al. 2020, sec. 2).

Gradient scaling. Every phase calls `accumulate_gradients` once per chunk of `batch_gpu`
samples; the chunk loss is the chunk *mean* times `gain / num_chunks`, where `num_chunks` is the
number of chunks in the global batch (over all rounds and ranks) and `gain` the lazy
regularisation interval. After the ranks' gradients are summed, the step therefore sees the mean
over the global batch whatever the split into processes and rounds.
"""

import math

import numpy as np
import torch
import torch.nn.functional as F

from ops import upfirdn2d
from torch_utils import distributed

G_PHASES = ('Gmain', 'Greg', 'Gboth')
D_PHASES = ('Dmain', 'Dreg', 'Dboth')


class StyleGAN2Loss:
    def __init__(self, G, D, augment_pipe=None, r1_gamma=10.0, style_mixing_prob=0.0,
                 pl_weight=0.0, pl_batch_shrink=2, pl_decay=0.01, blur_init_sigma=0.0,
                 blur_fade_kimg=0.0, stats=None, real_logits_hook=None):
        self.G = G
        self.D = D
        self.augment_pipe = augment_pipe
        self.r1_gamma = float(r1_gamma)                  # gamma of R1, eq. 9 of Mescheder et al.
        self.style_mixing_prob = float(style_mixing_prob)
        self.pl_weight = float(pl_weight)                # w_pl of StyleGAN2 eq. 4 (times interval)
        self.pl_batch_shrink = int(pl_batch_shrink)
        self.pl_decay = float(pl_decay)                  # running-mean rate of the target length a
        self.blur_init_sigma = float(blur_init_sigma)
        self.blur_fade_kimg = float(blur_fade_kimg)
        self.stats = stats
        self.real_logits_hook = real_logits_hook         # e.g. the ADA controller's sign counter
        device = next(G.parameters()).device
        self.pl_mean = torch.zeros([], device=device)
        self._pl_sum = torch.zeros([2], dtype=torch.float64, device=device)  # (sum of lengths, count)

    # -- state for exact resume ------------------------------------------------------------------

    def state_dict(self) -> dict:
        return {'pl_mean': self.pl_mean.detach().cpu().clone()}

    def load_state_dict(self, state: dict):
        self.pl_mean.copy_(state['pl_mean'])

    # -- building blocks ---------------------------------------------------------------------------

    def _report(self, name, value):
        if self.stats is not None:
            self.stats.report(name, value)

    def blur_sigma(self, cur_nimg: int) -> float:
        if self.blur_fade_kimg <= 0 or self.blur_init_sigma <= 0:
            return 0.0
        return max(1.0 - cur_nimg / (self.blur_fade_kimg * 1e3), 0.0) * self.blur_init_sigma

    def run_G(self, z, c, update_emas=False):
        ws = self.G.mapping(z, c, update_emas=update_emas)            # [N, num_ws, w_dim]
        if self.style_mixing_prob > 0 and float(torch.rand([])) < self.style_mixing_prob:
            ws = self._mix_styles(ws, z, c)
        img = self.G.synthesis(ws, noise_mode='random', update_emas=update_emas)  # [N, C, H, W]
        return img, ws

    def _mix_styles(self, ws, z, c):
        """StyleGAN sec. 3.1: from a random crossover layer on, use the ws of a second latent."""
        num_ws = ws.shape[1]
        cutoff = int(torch.randint(1, num_ws, []))
        ws2 = self.G.mapping(torch.randn_like(z), c, update_emas=False)
        return torch.cat([ws[:, :cutoff], ws2[:, cutoff:]], dim=1)

    def run_D(self, img, c, blur_sigma=0.0):
        blur_size = int(np.floor(blur_sigma * 3))
        if blur_size > 0:
            taps = torch.arange(-blur_size, blur_size + 1, device=img.device, dtype=torch.float32)
            f = torch.exp2(-(taps / blur_sigma).square())  # Gaussian in base 2, as it only needs to be smooth
            img = upfirdn2d.filter2d(img, f / f.sum())
        if self.augment_pipe is not None:
            img = self.augment_pipe(img)
        return self.D(img, c)                                              # [N, 1]

    # -- phases ------------------------------------------------------------------------------------

    def accumulate_gradients(self, phase, real_img, real_c, gen_z, gen_c, gain, num_chunks, cur_nimg):
        """Add this chunk's contribution to the .grad of the phase's network."""
        scale = float(gain) / num_chunks
        blur_sigma = self.blur_sigma(cur_nimg)
        if phase in ('Gmain', 'Gboth'):
            self._generator_main(gen_z, gen_c, scale, blur_sigma)
        if phase in ('Greg', 'Gboth') and self.pl_weight > 0:
            self._generator_path_length(gen_z, gen_c, scale)
        if phase in ('Dmain', 'Dboth'):
            self._discriminator_fake(gen_z, gen_c, scale, blur_sigma)
        do_main = phase in ('Dmain', 'Dboth')
        do_r1 = phase in ('Dreg', 'Dboth') and self.r1_gamma > 0
        if do_main or do_r1:
            self._discriminator_real(real_img, real_c, scale, blur_sigma, do_main, do_r1)

    def _generator_main(self, gen_z, gen_c, scale, blur_sigma):
        gen_img, _ = self.run_G(gen_z, gen_c)
        gen_logits = self.run_D(gen_img, gen_c, blur_sigma)
        self._report('Loss/scores/fake', gen_logits)
        self._report('Loss/signs/fake', gen_logits.sign())
        loss_G = F.softplus(-gen_logits)                                   # -log(sigmoid(D(G(z))))
        self._report('Loss/G/loss', loss_G)
        (loss_G.mean() * scale).backward()

    def _generator_path_length(self, gen_z, gen_c, scale):
        batch = max(gen_z.shape[0] // self.pl_batch_shrink, 1)
        gen_img, gen_ws = self.run_G(gen_z[:batch], gen_c[:batch])
        # y ~ N(0, I) / sqrt(H W) makes E|J^T y| independent of the resolution (StyleGAN2 sec. 3.2).
        pl_noise = torch.randn_like(gen_img) / math.sqrt(gen_img.shape[2] * gen_img.shape[3])
        pl_grads, = torch.autograd.grad(outputs=[(gen_img * pl_noise).sum()], inputs=[gen_ws],
                                        create_graph=True, only_inputs=True)   # [N, num_ws, w_dim]
        pl_lengths = pl_grads.square().sum(2).mean(1).sqrt()                   # [N]
        self._pl_sum += torch.stack([pl_lengths.detach().sum().double(),
                                     pl_lengths.new_tensor(float(batch), dtype=torch.float64)])
        pl_penalty = (pl_lengths - self.pl_mean).square()
        self._report('Loss/pl_penalty', pl_penalty)
        loss_Gpl = pl_penalty * self.pl_weight
        self._report('Loss/G/reg', loss_Gpl)
        (loss_Gpl.mean() * scale).backward()

    def _discriminator_fake(self, gen_z, gen_c, scale, blur_sigma):
        with torch.no_grad():  # D's phase: G only produces inputs, no graph needed
            gen_img, _ = self.run_G(gen_z, gen_c, update_emas=True)
        gen_logits = self.run_D(gen_img, gen_c, blur_sigma)
        self._report('Loss/scores/fake', gen_logits)
        self._report('Loss/signs/fake', gen_logits.sign())
        loss_Dgen = F.softplus(gen_logits)                                 # -log(1 - sigmoid(D(G(z))))
        (loss_Dgen.mean() * scale).backward()

    def _discriminator_real(self, real_img, real_c, scale, blur_sigma, do_main, do_r1):
        real_img_tmp = real_img.detach().requires_grad_(do_r1)
        real_logits = self.run_D(real_img_tmp, real_c, blur_sigma)
        self._report('Loss/scores/real', real_logits)
        self._report('Loss/signs/real', real_logits.sign())
        if self.real_logits_hook is not None:
            self.real_logits_hook(real_logits.detach())
        loss = real_logits.new_zeros([real_logits.shape[0]])
        if do_main:
            loss_Dreal = F.softplus(-real_logits).flatten()                  # -log(sigmoid(D(x)))
            self._report('Loss/D/loss', loss_Dreal)  # the fake half is in Loss/scores/fake
            loss = loss + loss_Dreal
        if do_r1:
            r1_grads, = torch.autograd.grad(outputs=[real_logits.sum()], inputs=[real_img_tmp],
                                            create_graph=True, only_inputs=True)  # [N, C, H, W]
            r1_penalty = r1_grads.square().sum([1, 2, 3])                       # [N]
            loss_Dr1 = r1_penalty * (self.r1_gamma / 2)
            self._report('Loss/r1_penalty', r1_penalty)
            self._report('Loss/D/reg', loss_Dr1)
            loss = loss + loss_Dr1
        (loss.mean() * scale).backward()

    def finish_phase(self, phase):
        """After all chunks of a phase: move the path-length target a towards this step's mean.

        The lengths of every chunk on every rank enter one update, so the result does not depend
        on how the batch was split into processes and rounds.
        """
        if phase in ('Greg', 'Gboth') and self.pl_weight > 0:
            distributed.all_reduce_sum_(self._pl_sum)
            if self._pl_sum[1] > 0:
                mean = (self._pl_sum[0] / self._pl_sum[1]).to(self.pl_mean.dtype)
                self.pl_mean.copy_(self.pl_mean.lerp(mean, self.pl_decay))
            self._pl_sum.zero_()
