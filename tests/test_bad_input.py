"""Bad input across the public API and the command line: one table, one row per case.

Each row is (a label, a call, the exception type, the phrases the message must contain). The phrases
name the argument (or the command-line option) and what it allows, so a user can correct the call
from the message alone. The command-line rows run `diffnotes.cli.main` in-process and expect exit
status 2 with the message on stderr.
"""
import contextlib, io, math, shutil, warnings
from functools import partial
import numpy as np
import pytest, torch
warnings.filterwarnings('ignore', message='`torch.jit.script` is deprecated')
from diffnotes.schedules import linear_betas, cosine_betas, cosine_abar, abar_from_betas, snr, logsnr, check_betas, rescale_zero_terminal_snr
from diffnotes.schedules import flow_abar
from diffnotes.weights import p2_weights, min_snr_weights, eps_weight, eps_mse, continuous_weights, edm_weights, sigmoid_weights, weight_table
from diffnotes.diffusion import noisify, get_target, x0_eps_from_pred, DiffusionSchedule, hybrid_loss, learned_range_log_variance
from diffnotes.timesteps import uniform_steps, uniform_t, lognormal_sigma, LossSecondMomentSampler, space_timesteps, respace_betas
from diffnotes.grids import sampling_steps, dpm_grid, karras_sigmas, ddim_grid, flow_grid
from diffnotes.denoiser import Denoiser, ImageNoise, image_seed
from diffnotes.samplers import ddim_step, ddpm_step, ddim_sample, ddpm_sample, dpm_solver_sample, euler_sample, heun_sample, SAMPLERS
from diffnotes.models import TinyUNet, timestep_embedding
from diffnotes.data import to_model_scale, get_dls
from diffnotes.eval import ImageEval, frechet_distance
from diffnotes.config import RunConfig, sampling_of, SAMPLER_NAMES
from diffnotes.consistency import cm_grid
from diffnotes.cm_training import ConsistencyCallback, ConsistencyLoss
from diffnotes.checkpoints import load_checkpoint
from diffnotes.sampling import sample_from
from diffnotes.export import export_diffusers, check_exportable
from diffnotes.callbacks import DDPMCallback, ContinuousDDPMCallback, NaNGuard, FlowCallback, ot_pair
from diffnotes.ema import EMA
from diffnotes.cli import main

B = cosine_betas()
X = torch.zeros(4, 1, 8, 8)
T4 = torch.tensor([0, 10, 500, 999])
NAN, INF = float('nan'), float('inf')
M = TinyUNet(channels=(8, 16), emb_dim=16)
IE = ImageEval.fashion_mnist()
IMGS = torch.zeros(8, 1, 32, 32)

CM_CFG = RunConfig(callback='consistency', init='runs/edm')  # a consistency run tuning an EDM run

def nan_imgs(): x = IMGS.clone(); x[0, 0, 0, 0] = NAN; return x

def _nan_model():
    "A TinyUNet whose weights hold a NaN (a diverged run)"
    m = TinyUNet(channels=(8, 16))
    with torch.no_grad(): next(m.parameters())[0] = NAN
    return m

API = [
    # schedules
    ('linear_betas T=0', lambda: linear_betas(0), ValueError, ['`n_train_steps`', '[1, 1000000]']),
    ('linear_betas T="1000"', lambda: linear_betas('1000'), ValueError, ['`n_train_steps`', 'integer']),
    ('linear_betas T=2.5', lambda: linear_betas(2.5), ValueError, ['`n_train_steps`', 'integer']),
    ('linear_betas beta_min=0', lambda: linear_betas(beta_min=0.), ValueError, ['`beta_min`', '(0, 1)']),
    ('linear_betas beta_max=1', lambda: linear_betas(beta_max=1.), ValueError, ['`beta_max`', 'must lie in']),
    ('cosine_betas max_beta=1', lambda: cosine_betas(max_beta=1.), ValueError, ['`max_beta`', '(0, 1)']),
    ('cosine_abar t=1.5', lambda: cosine_abar(1.5), ValueError, ['`t`', '[0, 1]']),
    ('cosine_abar t=nan', lambda: cosine_abar(torch.tensor([0.2, NAN])), ValueError, ['`t`', '[0, 1]']),
    ('cosine_abar t="0.5"', lambda: cosine_abar('0.5'), ValueError, ['`t`', 'number']),
    ('snr abar=1.2', lambda: snr(torch.tensor([1.2])), ValueError, ['`abar`', '[0, 1]']),
    ('logsnr abar=-0.1', lambda: logsnr(-0.1), ValueError, ['`abar`', '[0, 1]']),
    ('abar_from_betas empty', lambda: abar_from_betas(torch.tensor([])), ValueError, ['`betas`', 'non-empty']),
    ('abar_from_betas inf', lambda: abar_from_betas(torch.tensor([0.1, INF])), ValueError, ['`betas`', '(0, 1]']),
    ('abar_from_betas nan', lambda: abar_from_betas(torch.tensor([0.1, NAN])), ValueError, ['`betas`', '(0, 1]']),
    ('abar_from_betas complex', lambda: abar_from_betas(torch.full((4,), 0.1 + 0.1j)), ValueError, ['`betas`', 'real numbers']),
    ('cosine_abar complex', lambda: cosine_abar(torch.tensor([0.5 + 0j])), ValueError, ['`t`', 'real numbers']),
    ('cosine_betas T=1e10', lambda: cosine_betas(10**10), ValueError, ['`n_train_steps`', '[1, 1000000]']),
    ('linear_betas T=1e7', lambda: linear_betas(10**7), ValueError, ['`n_train_steps`', '[1, 1000000]']),
    ('check_betas 2-d', lambda: check_betas(torch.full((2, 2), 0.5)), ValueError, ['`betas`', '1-d']),
    # weights
    ('p2 gamma<0', lambda: p2_weights(torch.ones(2), gamma=-1.), ValueError, ['`gamma`', '[0, inf)']),
    ('p2 k=0', lambda: p2_weights(torch.ones(2), gamma=1., k=0.), ValueError, ['`k`', '(0, inf)']),
    ('p2 snr<0', lambda: p2_weights(torch.tensor([-1.]), 1.), ValueError, ['`snr`', '[0, inf]']),
    ('p2 gamma=inf', lambda: p2_weights(torch.ones(2), gamma=INF), ValueError, ['`gamma`', '[0, inf)']),
    ('p2 k=inf', lambda: p2_weights(torch.ones(2), gamma=1., k=INF), ValueError, ['`k`', '(0, inf)']),
    ('p2 complex snr', lambda: p2_weights(torch.tensor([1 + 1j]), 1.), ValueError, ['`snr`', 'real numbers']),
    ('min_snr gamma=0', lambda: min_snr_weights(torch.ones(2), 0.), ValueError, ['`gamma`', '(0, inf]']),
    ('min_snr objective', lambda: min_snr_weights(torch.ones(2), 5., 'score'), ValueError, ['`objective`', "'eps', 'x0', 'v'"]),
    ('eps_weight snr=0 for x0', lambda: eps_weight(torch.ones(1), torch.zeros(1), 'x0'), ValueError, ['`snr`', '(0, inf]']),
    ('eps_mse snr<0', lambda: eps_mse(torch.ones(1), -torch.ones(1), 'v'), ValueError, ['`snr`', '[0, inf]']),
    ('continuous_weights increasing', lambda: continuous_weights(torch.tensor([0.5, 0.9])), ValueError, ['`abar`', 'decreasing']),
    ('continuous_weights one step', lambda: continuous_weights(torch.tensor([0.5])), ValueError, ['`abar`', 'at least 2 steps']),
    ('weight_table one step', lambda: weight_table(torch.tensor([0.5])), ValueError, ['`betas`', 'at least 2 steps']),
    # diffusion
    ('noisify int images', lambda: noisify(X.long(), T4, abar_from_betas(B)), ValueError, ['`x0`', 'floating-point']),
    ('noisify half the t', lambda: noisify(X, T4[:2], abar_from_betas(B)), ValueError, ['`t`', 'one entry per image']),
    ('noisify t=1000', lambda: noisify(X, T4 + 1, abar_from_betas(B)), ValueError, ['`t`', '[0, 1000)']),
    ('noisify empty batch', lambda: noisify(X[:0], T4[:0], abar_from_betas(B)), ValueError, ['`x0`', 'at least one image']),
    ('noisify noise shape', lambda: noisify(X, T4, abar_from_betas(B), X[:2]), ValueError, ['`noise`', 'shape']),
    ('noisify bool tensor t', lambda: noisify(X, T4 > 500, abar_from_betas(B)), ValueError, ['`t`', 'integer steps or floating-point times', 'bool']),
    ('noisify t=True', lambda: noisify(X, True, abar_from_betas(B)), ValueError, ['`t`', 'integer steps or floating-point times', 'bool']),
    ('learned_range_log_variance NaN v', lambda: learned_range_log_variance(torch.full((4, 1, 8, 8), NAN), T4, B), ValueError, ['`v`', '(-inf, inf)']),
    ('schedule lookup t out of range', lambda: DiffusionSchedule(B).lookup('abar', T4 + 1), ValueError, ['`t`', '[0, 1000)']),
    ('schedule lookup name', lambda: DiffusionSchedule(B).lookup('alpha', T4), ValueError, ['`name`', "'abar'"]),
    ('schedule empty betas', lambda: DiffusionSchedule(torch.tensor([])), ValueError, ['`betas`', 'non-empty']),
    ('schedule both', lambda: DiffusionSchedule(B, cosine_abar), ValueError, ['`betas`', '`abar_fn`']),
    ('get_target objective', lambda: get_target('score', X, X, 0.5), ValueError, ['`objective`', "'eps', 'x0', 'v'"]),
    ('x0_eps_from_pred objective', lambda: x0_eps_from_pred(X, X, torch.tensor(0.5), 'noise'), ValueError, ['`objective`']),
    ('hybrid_loss one channel', lambda: hybrid_loss(X, X, X, T4, X, B), ValueError, ['2×1 channels']),
    # timesteps
    ('uniform_steps T=0', lambda: uniform_steps(4, 0), ValueError, ['`n_train_steps`', '[1, 1000000]']),
    ('uniform_steps batch_size=-1', lambda: uniform_steps(-1, 1000), ValueError, ['`batch_size`', '[1, inf)']),
    ('uniform_t batch_size=-1', lambda: uniform_t(-1), ValueError, ['`batch_size`', '[1, inf)']),
    ('lognormal_sigma batch_size=-1', lambda: lognormal_sigma(-1), ValueError, ['`batch_size`', '[1, inf)']),
    ('importance sampler sample(0)', lambda: LossSecondMomentSampler(10).sample(0), ValueError, ['`batch_size`', '[1, inf)']),
    ('importance sampler T=0', lambda: LossSecondMomentSampler(0), ValueError, ['`n_train_steps`', '[1, 1000000]']),
    ('importance sampler uniform_prob=2', lambda: LossSecondMomentSampler(10, uniform_prob=2.), ValueError, ['`uniform_prob`', '[0, 1]']),
    ('space_timesteps text', lambda: space_timesteps(10, 'ten'), ValueError, ['`section_counts`', 'ddimN']),
    ('space_timesteps zero', lambda: space_timesteps(10, [0]), ValueError, ['`section_counts`', 'positive']),
    ('space_timesteps ddim45', lambda: space_timesteps(1000, 'ddim45'), ValueError, ['`section_counts`', 'N=45']),
    ('respace_betas empty', lambda: respace_betas(B, []), ValueError, ['`use_steps`', 'non-empty', '[0, 1000)']),
    ('respace_betas duplicates', lambda: respace_betas(B, [3, 3, 7]), ValueError, ['`use_steps`', 'distinct']),
    ('respace_betas out of range', lambda: respace_betas(B, [0, 1000]), ValueError, ['`use_steps`', '[0, 1000)']),
    # samplers
    ('ddim_step abar_t>1', lambda: ddim_step(X, X, 1.5, 0.7), ValueError, ['`abar_t`', '(0, 1]']),
    ('ddim_step abar_prev=0', lambda: ddim_step(X, X, 0.5, 0.), ValueError, ['`abar_prev`', '(0, 1]']),
    ('ddim_step abar_t nan', lambda: ddim_step(X, X, NAN, 0.7), ValueError, ['`abar_t`', '(0, 1]']),
    ('ddim_step eta<0', lambda: ddim_step(X, X, 0.5, 0.7, eta=-1.), ValueError, ['`eta`', '[0, inf]']),
    ('ddim_step eta text', lambda: ddim_step(X, X, 0.5, 0.7, eta='0.5'), ValueError, ['`eta`', 'number']),
    ('ddpm_step t=1000', lambda: ddpm_step(X, X, 1000, B), ValueError, ['`t`', '[0, 1000)']),
    ('ddpm_step variance', lambda: ddpm_step(X, X, 5, B, variance='fixed'), ValueError, ['`variance`', 'fixed_small']),
    ('sampling_steps n>T', lambda: sampling_steps(1000, 2000), ValueError, ['`n_steps`', '[1, 1000]']),
    ('sampling_steps duplicates', lambda: sampling_steps(1000, 10, [5, 5]), ValueError, ['`spacing`', 'distinct']),
    ('sampling_steps empty list', lambda: sampling_steps(1000, 10, []), ValueError, ['`spacing`', 'non-empty']),
    ('ddim_sample n_steps=0', lambda: ddim_sample(M, (2, 1, 8, 8), B, 0, progress=False), ValueError, ['`n_steps`', '[1, 1000000]']),
    ('ddim_sample x_T shape', lambda: ddim_sample(M, (2, 1, 8, 8), B, 5, x_T=X, progress=False), ValueError, ['`x_T`', '(2, 1, 8, 8)']),
    ('ddim_sample model on another device', lambda: ddim_sample(TinyUNet(channels=(8, 16)).to('meta'), (2, 1, 8, 8), B, 5, device='cpu', progress=False), ValueError, ['`device`', 'model']),
    ('ddpm_sample objective', lambda: ddpm_sample(M, (2, 1, 8, 8), B, objective='score', progress=False), ValueError, ['`objective`']),
    ('euler_sample s_churn<0', lambda: euler_sample(M, (2, 1, 8, 8), B, 4, s_churn=-1., progress=False), ValueError, ['`s_churn`', '[0, ']),
    ('heun_sample s_noise inf', lambda: heun_sample(M, (2, 1, 8, 8), B, 4, s_noise=math.inf, progress=False), ValueError, ['`s_noise`', '[0, 10]']),
    ('heun_sample rho=0', lambda: heun_sample(M, (2, 1, 8, 8), B, 4, rho=0., progress=False), ValueError, ['`rho`', '(0, 100]']),
    ('heun_sample n_steps=0', lambda: heun_sample(M, (2, 1, 8, 8), B, 0, progress=False), ValueError, ['`n_steps`', '[1, 1000000]']),
    ('euler_sample zero SNR', lambda: euler_sample(M, (2, 1, 8, 8), rescale_zero_terminal_snr(B), 4, objective='v', spacing='trailing', progress=False), ValueError, ['finite σ']),
    ('karras_sigmas sigma_min=0', lambda: karras_sigmas(5, 0., 80.), ValueError, ['`sigma_min`', '(0, inf)']),
    ('karras_sigmas sigma_max<min', lambda: karras_sigmas(5, 1., 0.5), ValueError, ['`sigma_max`', '[1, inf)']),
    ('Denoiser objective', lambda: Denoiser(M, B, 'score'), ValueError, ['`objective`', "'edm'"]),
    ('Denoiser sigma_data<0', lambda: Denoiser(M, B, 'edm', sigma_data=-1.), ValueError, ['`sigma_data`', '(0, 100]']),
    ('image_seed seed<0', lambda: image_seed(-1, 0), ValueError, ['`seed`', '[0, ']),
    ('image_seed i text', lambda: image_seed(0, 'a'), ValueError, ['`i`', '[0, ']),
    ('ImageNoise shape', lambda: ImageNoise(0, 2).randn((3, 1, 4, 4)), ValueError, ['draws 2 images', '(3, 1, 4, 4)']),
    # models and data
    ('TinyUNet odd size', lambda: TinyUNet(channels=(8, 16))(torch.zeros(1, 1, 31, 31), torch.zeros(1, dtype=torch.long)), ValueError, ['`x`', 'multiples of 2']),
    ('timestep_embedding odd dim', lambda: timestep_embedding(T4, 7), ValueError, ['`dim`', 'even']),
    ('to_model_scale float', lambda: to_model_scale(torch.rand(2, 28, 28)), ValueError, ['`x`', 'uint8', '[0, 255]']),
    ('to_model_scale empty', lambda: to_model_scale(torch.zeros(0, 28, 28, dtype=torch.uint8)), ValueError, ['`x`', 'at least one image']),
    ('to_model_scale size', lambda: to_model_scale(torch.zeros(2, 28, 28, dtype=torch.uint8), 16), ValueError, ['`size`', '28']),
    ('get_dls unknown data', lambda: get_dls('no/such/folder'), ValueError, ['`data`', "'embedded'"]),
    ('get_dls bs=0', lambda: get_dls(bs=0), ValueError, ['`bs`', '[1, inf)']),
    ('get_dls data=123', lambda: get_dls(data=123), ValueError, ['`data`', "'embedded', 'full'"]),
    ('get_dls data=None', lambda: get_dls(data=None), ValueError, ['`data`', "'embedded', 'full'"]),
    # evaluation
    ('fid NaN pixel', lambda: IE.fid(nan_imgs()), ValueError, ['`x`', '[-1, 1]']),
    ('fid inf pixel', lambda: IE.fid(IMGS + INF), ValueError, ['`x`', '[-1, 1]']),
    ('fid integer images', lambda: IE.fid(IMGS.long()), ValueError, ['`x`', 'float']),
    ('fid RGB images', lambda: IE.fid(torch.zeros(8, 3, 32, 32)), ValueError, ['`x`', '(N, 1, 32, 32)']),
    ('fid out of range', lambda: IE.fid(IMGS + 2), ValueError, ['`x`', '[-1, 1]']),
    ('kid NaN pixel', lambda: IE.kid(nan_imgs()), ValueError, ['`x`', '[-1, 1]']),
    ('bootstrap n_boot=0', lambda: IE.bootstrap(IMGS, 0), ValueError, ['`n_boot`', '[1, inf)']),
    ('fid meta tensor', lambda: IE.fid(IMGS.to('meta')), ValueError, ['`x`', '(N, 1, 32, 32)', 'meta tensor']),
    ('frechet_distance 0-d', lambda: frechet_distance(*[torch.tensor(1.)] * 4), ValueError, ['`mu1`', '(d,)', '`sigma1`', '(d, d)']),
    # runs
    ('RunConfig bs=0', lambda: RunConfig(bs=0), ValueError, ['`bs`', '[1, 65536]']),
    ('RunConfig epochs=-1', lambda: RunConfig(epochs=-1), ValueError, ['`epochs`', '[1, 100000]']),
    ('RunConfig lr=-1', lambda: RunConfig(lr=-1.), ValueError, ['`lr`', '(0, 1]']),
    ('RunConfig lr=10', lambda: RunConfig(lr=10.), ValueError, ['`lr`', '(0, 1]']),
    ('RunConfig lr nan', lambda: RunConfig(lr=NAN), ValueError, ['`lr`', '(0, 1]']),
    ('RunConfig channels 8,x', lambda: RunConfig(channels='8,x'), ValueError, ['`channels`', 'integers']),
    ('RunConfig sample_steps>T', lambda: RunConfig(sample_steps=5000), ValueError, ['`sample_steps`', '[1, 1000]']),
    ('RunConfig n_samples=0', lambda: RunConfig(n_samples=0), ValueError, ['`n_samples`', '[1, 1000000]']),
    ('RunConfig objective', lambda: RunConfig(objective='score'), ValueError, ['`objective`', "'eps', 'x0', 'v'"]),
    ('RunConfig gamma=3', lambda: RunConfig(gamma=3.), ValueError, ['`gamma`', '[0, 2]']),
    ('RunConfig importance continuous', lambda: RunConfig(callback='continuous', importance=True), ValueError, ['`callback`', "'ddpm'"]),
    ('RunConfig zero_snr eps', lambda: RunConfig(zero_snr=True, objective='eps'), ValueError, ['`zero_snr`', "'v' or 'x0'"]),
    ('RunConfig zero_snr continuous', lambda: RunConfig(zero_snr=True, callback='continuous'), ValueError, ['`zero_snr`', "`callback` 'ddpm'"]),
    ('RunConfig edm eps', lambda: RunConfig(weight='edm', objective='eps'), ValueError, ["`weight` 'edm'", "'v' or 'x0'"]),
    ('RunConfig sigmoid_b', lambda: RunConfig(weight='sigmoid', sigmoid_b=25.), ValueError, ['`sigmoid_b`', '[-20, 20]']),
    ('edm_weights sigma_data', lambda: edm_weights(torch.ones(2), sigma_data=-1.), ValueError, ['`sigma_data`', '(0, inf]']),
    ('sigmoid_weights snr', lambda: sigmoid_weights(torch.tensor([-1.])), ValueError, ['`snr`', '[0, inf]']),
    ('RunConfig sampler lms', lambda: RunConfig(sampler='lms'), ValueError, ['`sampler`', "'euler', 'heun'"]),
    ('RunConfig flow weight edm', lambda: RunConfig(callback='flow', weight='edm'), ValueError, ["`weight` 'edm'", "`callback` 'flow'"]),
    ('FlowCallback t_dist', lambda: FlowCallback(t_dist='logit_normal'), ValueError, ['`t_dist`', 'a function']),
    ('ot_pair one image', lambda: ot_pair(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4)), ValueError, ['`ot`', 'at least 2 images']),
    ('flow_grid shift 0', lambda: flow_grid(10, 0.), ValueError, ['`shift`', '(0, inf)']),
    ('ddim_grid flow times', lambda: ddim_grid(flow_abar, 3, [1., 0.]), ValueError, ['`spacing`', '4 decreasing times']),
    ('rescale_zero_terminal_snr one step', lambda: rescale_zero_terminal_snr([0.5]), ValueError, ['`betas`', 'at least 2']),
    ('check_betas β=1 not last', lambda: check_betas([1., 0.5]), ValueError, ['`betas[:-1]`', '(0, 1)']),
    ('dpm_grid spacing', lambda: dpm_grid(B, 10, spacing='leading'), ValueError, ['`spacing`', "'karras'"]),
    ('dpm_grid karras zero SNR', lambda: dpm_grid(rescale_zero_terminal_snr(B), 10, spacing='karras'), ValueError, ['`spacing`', 'finite σ']),
    ('ddim_sample eps zero SNR', lambda: ddim_sample(TinyUNet(channels=(8, 16)), (2, 1, 32, 32), rescale_zero_terminal_snr(B), 2, progress=False), ValueError, ['`objective`', "'v' or 'x0'"]),
    ('dpm_solver_sample eps zero SNR', lambda: dpm_solver_sample(TinyUNet(channels=(8, 16)), (2, 1, 32, 32), rescale_zero_terminal_snr(B), 2, progress=False), ValueError, ['`objective`', 'zero terminal SNR']),
    ('DDPMCallback t_sampler', lambda: DDPMCallback(B, t_sampler='loss'), ValueError, ['`t_sampler`', "'importance'"]),
    ('DDPMCallback weight=3', lambda: DDPMCallback(B, weight=3), ValueError, ['`weight`', 'None or a callable']),
    ('ContinuousDDPMCallback t_min=0', lambda: ContinuousDDPMCallback(t_min=0.), ValueError, ['`t_min`', '(0, 1)']),
    ('NaNGuard max_ratio=0.5', lambda: NaNGuard(max_ratio=0.5), ValueError, ['`max_ratio`', '(1, inf]']),
    ('sample_from steps>T', lambda: sample_from(M, RunConfig(channels=(8, 16)), 2, steps=2000), ValueError, ['`steps`', '[1, 1000]']),
    ('sample_from eta=inf', lambda: sample_from(M, RunConfig(channels=(8, 16)), 2, eta=INF), ValueError, ['`eta`', '[0, 10]']),
    ('EMA decay=1', lambda: __import__('diffnotes.callbacks').callbacks.EMA(decay=1.), ValueError, ['`decay`', '(0, 1)']),
    ('dpm_solver_sample n_steps>T', lambda: __import__('diffnotes.samplers').samplers.dpm_solver_sample(M, (2, 1, 8, 8), B, 2000, progress=False), ValueError, ['`n_steps`', '[1, 1000]']),
    ('sample_from n=0', lambda: sample_from(M, RunConfig(channels=(8, 16)), 0), ValueError, ['`n`', '[1, 1000000]']),
    # widths and hyper-parameters that no model or callback can use
    ('TinyUNet in_channels=0', lambda: TinyUNet(in_channels=0), ValueError, ['`in_channels`', '[1, inf)']),
    ('TinyUNet channels=()', lambda: TinyUNet(channels=()), ValueError, ['`channels`', 'non-empty']),
    ('TinyUNet channels=(8, 0)', lambda: TinyUNet(channels=(8, 0)), ValueError, ['`channels`', 'integers ≥ 1']),
    ('TinyUNet emb_dim=0', lambda: TinyUNet(emb_dim=0), ValueError, ['`emb_dim`', '[1, inf)']),
    ('TinyUNet out_channels=0', lambda: TinyUNet(out_channels=0), ValueError, ['`out_channels`', 'None or an integer']),
    ('EMA power=-1', lambda: EMA(power=-1), ValueError, ['`power`', '(0, inf)']),
    ('EMA inv_gamma=0', lambda: EMA(inv_gamma=0), ValueError, ['`inv_gamma`', '(0, inf)']),
    ('DDPMCallback lambda_vlb=-1', lambda: DDPMCallback(B, lambda_vlb=-1), ValueError, ['`lambda_vlb`', '[0, inf)']),
    ('DDPMCallback lambda_vlb=nan', lambda: DDPMCallback(B, lambda_vlb=NAN), ValueError, ['`lambda_vlb`', '[0, inf)']),
    ('get_dls valid_pct=1.5', lambda: get_dls('some/folder', valid_pct=1.5), ValueError, ['`valid_pct`', '(0, 1)']),
    ('get_dls valid_pct=0', lambda: get_dls('some/folder', valid_pct=0), ValueError, ['`valid_pct`', '(0, 1)']),
    ('RunConfig in_channels=2', lambda: RunConfig(in_channels=2), ValueError, ['`in_channels`', '(1, 3)']),
    ('load_checkpoint max_params=0', lambda: load_checkpoint('no/such', max_params=0), ValueError, ['`max_params`', '[1, inf)']),
    # values where a formula has no finite answer
    ('edm_weights ε at SNR 0', lambda: edm_weights(torch.tensor([0.])), ValueError, ['`snr`', '(0, inf]']),
    ('edm_weights x0 at SNR inf', lambda: edm_weights(torch.tensor([INF]), objective='x0'), ValueError, ['`snr`', '[0, inf)']),
    ('eps_mse x0 at SNR inf', lambda: eps_mse(torch.ones(1), torch.tensor([INF]), 'x0'), ValueError, ['`snr`', '[0, inf)']),
    ('x0_eps_from_pred ε at ᾱ 0', lambda: x0_eps_from_pred(X, X, 0., 'eps'), ValueError, ['`abar_t`', '(0, 1]']),
    ('x0_eps_from_pred x0 at ᾱ 1', lambda: x0_eps_from_pred(X, X, 1., 'x0'), ValueError, ['`abar_t`', '[0, 1)']),
    ('LossSecondMomentSampler NaN loss', lambda: LossSecondMomentSampler(10).update(torch.tensor([1]), torch.tensor([NAN])),
     ValueError, ['`losses`', '[0, inf)']),
    ('LossSecondMomentSampler inf loss', lambda: LossSecondMomentSampler(10).update(torch.tensor([1]), torch.tensor([INF])),
     ValueError, ['`losses`', '[0, inf)']),
    ('LossSecondMomentSampler step 10 of 10', lambda: LossSecondMomentSampler(10).update(torch.tensor([10]), torch.ones(1)),
     ValueError, ['`t`', '[0, 9]']),
    ('LossSecondMomentSampler step -1', lambda: LossSecondMomentSampler(10).update(torch.tensor([-1]), torch.ones(1)),
     ValueError, ['`t`', '[0, 9]']),
    *[(f'{name} with a model that outputs NaN', partial(f, lambda x, t: x * NAN, (2, 1, 8, 8), B, 4, progress=False),
       ValueError, ["the model's output is not finite", 'model time']) for name, f in SAMPLERS.items()],
    ('ddim_sample with a model that outputs inf midway', lambda: ddim_sample(lambda x, t: x / (t[:, None, None, None] > 500), (2, 1, 8, 8), B, 4, progress=False),
     ValueError, ["the model's output is not finite", 'sampling stopped there']),
    # export to diffusers
    ('export_diffusers pipeline="euler"', lambda: export_diffusers('no/such/run', 'out', pipeline='euler'), ValueError,
     ['`pipeline`', "('ddpm', 'ddim', 'consistency')"]),
    ('check_exportable a consistency run as ddim', lambda: check_exportable(CM_CFG, 'ddim'), ValueError,
     ["`pipeline` 'ddim' cannot sample a `callback` 'consistency' run", "give `pipeline` 'consistency'"]),
    ('check_exportable a ddpm run as consistency', lambda: check_exportable(RunConfig(), 'consistency'), ValueError,
     ["`pipeline` 'consistency' cannot sample a `callback` 'ddpm' run", "'ddpm' or 'ddim'"]),
    ('export of a flow run to DDIMPipeline', lambda: check_exportable(RunConfig(callback='flow'), 'ddim'), ValueError,
     ["`pipeline` 'ddim' cannot sample a flow run", "give `pipeline` 'ddpm'"]),
    ('export of a learned-variance run to DDIMPipeline',
     lambda: check_exportable(RunConfig(learn_variance=True), 'ddim'), ValueError, ["`pipeline` 'ddim'", '`learn_variance`', "give `pipeline` 'ddpm'"]),
    ('export of an edm run', lambda: check_exportable(RunConfig(callback='edm')), ValueError,
     ["an 'edm' run does not export", "`callback` 'ddpm' or 'flow'"]),
    ('export of a continuous run', lambda: check_exportable(RunConfig(callback='continuous')), ValueError,
     ["`callback` 'continuous'", "`callback` 'ddpm' or 'flow'"]),
    # consistency runs
    *[(f'sampling_of a consistency run with {s}', partial(sampling_of, CM_CFG, s), ValueError,
       [f"`sampler` {s!r} needs a score", "give `sampler` 'consistency'"]) for s in SAMPLER_NAMES],
    ('sampling_of a consistency run steps=0', lambda: sampling_of(CM_CFG, steps=0), ValueError, ['`steps`', '[1, 1000]']),
    ("sampling_of 'consistency' for a ddpm run", lambda: sampling_of(RunConfig(), 'consistency'), ValueError,
     ["`sampler` 'consistency' needs a 'consistency' run"]),
    ('cm_grid n_steps=0', lambda: cm_grid(0), ValueError, ['`n_steps`', '[1, 10000]']),
    ('ConsistencyCallback q=1', lambda: ConsistencyCallback(q=1), ValueError, ['`q`', '(1, 1000]']),
    ('ConsistencyCallback stage_every=0', lambda: ConsistencyCallback(stage_every=0), ValueError, ['`stage_every`', '[1, inf)']),
    ('ConsistencyCallback mapping="linear"', lambda: ConsistencyCallback(mapping='linear'), ValueError, ['`mapping`', "('sigmoid', 'const')"]),
    ('ConsistencyCallback huber_c=-1', lambda: ConsistencyCallback(huber_c=-1), ValueError, ['`huber_c`', '[0, 1e+06]']),
    ('ConsistencyCallback objective="score"', lambda: ConsistencyCallback(objective='score'), ValueError, ['`objective`', "'eps', 'x0', 'v', 'flow', 'edm'"]),
    ('ConsistencyLoss c=nan', lambda: ConsistencyLoss(NAN), ValueError, ['`c`', '[0, 1e+06]']),
    ('sample_from with NaN weights', lambda: sample_from(_nan_model(), RunConfig(channels=(8, 16)), 2, steps=2), ValueError,
     ["the model's output is not finite"]),
]

@pytest.mark.parametrize('label,call,exc,phrases', API, ids=[r[0] for r in API])
def test_api_refuses(label, call, exc, phrases):
    with pytest.raises(exc) as e: call()
    for p in phrases: assert p in str(e.value), f"{label}: {p!r} not in {str(e.value)!r}"

def test_empty_checkpoint(tmp_path):
    (tmp_path / 'model.pt').write_bytes(b'')
    with pytest.raises(ValueError, match='is empty'): load_checkpoint(tmp_path)

CLI = [
    (['train', '--bs', '0'], ['`--bs`', '[1, 65536]']),
    (['train', '--bs', 'x'], ['argument --bs', "invalid int value: 'x'"]),
    (['train', '--bs', '-5'], ['`--bs`', '[1, 65536]']),
    (['train', '--bs', '1e9'], ['argument --bs', 'invalid int value']),
    (['train', '--epochs', '0'], ['`--epochs`', '[1, 100000]']),
    (['train', '--epochs', '-1'], ['`--epochs`', '[1, 100000]']),
    (['train', '--epochs', '10000000'], ['`--epochs`', '[1, 100000]']),
    (['train', '--lr', '0'], ['`--lr`', '(0, 1]']),
    (['train', '--lr', '-1'], ['`--lr`', '(0, 1]']),
    (['train', '--lr', '10'], ['`--lr`', '(0, 1]']),
    (['train', '--lr', 'fast'], ['argument --lr', "invalid float value: 'fast'"]),
    (['train', '--channels', '8,x'], ['`--channels`', 'integers']),
    (['train', '--channels', '0,8'], ['`--channels`', '[1, 4096]']),
    (['train', '--channels', '4,8'], ['`--channels` must be multiples of 8 for a TinyUNet', '(4, 8)']),
    (['train', '--sample-steps', '0'], ['`--sample-steps`', '[1, 1000]']),
    (['train', '--sample-steps', '5000'], ['`--sample-steps`', '[1, 1000]']),
    (['train', '--n-train-steps', '1', '--sample-steps', '2'], ['`--n-train-steps`', '[2, 100000]']),
    (['train', '--n-samples', '0'], ['`--n-samples`', '[1, 1000000]']),
    (['train', '--seed', '-1'], ['`--seed`', '[0, ']),
    (['train', '--gamma', '-1'], ['`--gamma`', '[0, 2]']),
    (['train', '--size', '0'], ['`--size`', '[8, 1024]']),
    (['train', '--in-channels', '4'], ['`--in-channels`', '(1, 3)']),
    (['train', '--model', 'vit'], ['`--model`', "'tiny', 'unet'"]),
    (['train', '--schedule', 'sigmoid'], ['`--schedule`', "'cosine', 'linear'"]),
    (['train', '--callback', 'flow', '--t-dist', 'beta'], ['`--t-dist`', "'uniform', 'logit_normal', 'mode', 'cosmap'"]),
    (['train', '--callback', 'flow', '--t-std', '0'], ['`--t-std`', '(0, 20]']),
    (['train', '--callback', 'flow', '--t-std', '-1'], ['`--t-std`', '(0, 20]']),
    (['train', '--callback', 'flow', '--shift', '0'], ['`--shift`', '(0, 1000]']),
    (['train', '--callback', 'flow', '--shift', '-2'], ['`--shift`', '(0, 1000]']),
    (['train', '--callback', 'flow', '--mode-scale', '3'], ['`--mode-scale`', '[-1, 1.75']),
    (['train', '--callback', 'flow', '--ot', '--bs', '1'], ['`--ot`', '`--bs` ≥ 2; got 1']),
    (['train', '--objective', 'flow'], ["`--objective` 'flow'", "give `--callback` 'flow'"]),
    (['train', '--callback', 'flow', '--objective', 'v'], ['`--objective`', "'flow' for `--callback` 'flow'"]),
    (['train', '--shift', '3'], ['`--shift`', "`--callback` 'flow' only"]),
    (['train', '--callback', 'edm', '--ot'], ['`--ot`', "`--callback` 'flow' only"]),
    (['train', '--max-loss-ratio', '1'], ['`--max-loss-ratio`', '(1, inf]']),
    (['train', '--callback', 'consistency'], ["`--callback` 'consistency' tunes", 'give `--init` RUN', '`--from-scratch` True']),
    (['train', '--cm-q', '3'], ['`--cm-q`', "`--callback` 'consistency' only"]),
    (['train', '--from-scratch'], ['`--from-scratch`', "`--callback` 'consistency' only"]),
    (['train', '--callback', 'edm', '--cm-stage-every', '10'], ['`--cm-stage-every`', "`--callback` 'consistency' only"]),
    (['train', '--callback', 'flow', '--cm-huber-c', '0.03'], ['`--cm-huber-c`', "`--callback` 'consistency' only"]),
    (['train', '--callback', 'consistency', '--from-scratch', '--cm-q', '1'], ['`--cm-q`', '(1, 1000]']),
    (['train', '--callback', 'consistency', '--from-scratch', '--cm-stage-every', '0'], ['`--cm-stage-every`', '[1, 1000000000]']),
    (['train', '--callback', 'consistency', '--from-scratch', '--cm-mapping', 'linear'], ['`--cm-mapping`', "'sigmoid', 'const'"]),
    (['train', '--callback', 'consistency', '--from-scratch', '--cm-p-std', '0'], ['`--cm-p-std`', '(0, 20]']),
    (['train', '--callback', 'consistency', '--from-scratch', '--cm-teacher', 'dit'], ['`--cm-teacher`', "'ddpm', 'continuous', 'edm', 'flow'"]),
    (['train', '--callback', 'consistency', '--from-scratch', '--weight', 'p2'], ['`--weight`', "'none' for `--callback` 'consistency'"]),
    (['train', '--callback', 'consistency', '--from-scratch', '--sampler', 'heun'], ["`--sampler` 'heun' needs a score", "give `--sampler` 'consistency'"]),
    (['train', '--callback', 'consistency', '--from-scratch', '--sample-steps', '0'], ['`--sample-steps`', '[1, 1000]']),
    (['train', '--sampler', 'consistency'], ["`--sampler` 'consistency' needs a 'consistency' run", "`--callback` 'ddpm'"]),
    (['train', '--ema-decay', '1'], ['`--ema-decay`', '[0, 1)']),
    (['export', 'no/such/run', 'out'], ['`RUN` no/such/run', 'no such run folder or checkpoint']),
    (['tables', '--n-train-steps', '0'], ['`--n-train-steps`', '[2, 100000]']),
    (['tables', '--n-train-steps', '1'], ['`--n-train-steps`', '[2, 100000]']),
    (['train', '--in-channels', '2'], ['`--in-channels`', '(1, 3)']),
    (['train', '--in-channels', '3'], ['`--in-channels`', 'must be 1 for Fashion-MNIST']),
    (['sample', 'no/such/run', '--max-params', '0'], ['`--max-params`', '[1, inf)']),
    (['export', 'no/such/run', 'out', '--max-params', '-5'], ['`--max-params`', '[1, inf)']),
    (['fid', '--samples', 'no/such.pt'], ['`SAMPLES`', 'no such file']),
    (['fid', 'no/such.pt'], ['`SAMPLES`', 'no such file or run folder']),
    (['sample', 'no/such/run'], ['`RUN` no/such/run', 'no such run folder or checkpoint']),
    (['train', '--resume', 'no/such/run'], ['`--resume`', 'no checkpoint at']),
    (['train', '--init', 'no/such/run'], ['`--init`', 'no checkpoint at']),
    (['train', '--init', 'a', '--resume', 'b'], ['`--init`', '`--resume`', 'give one']),
    (['train', '--config', 'no/such.json'], ['`--config`', 'no such file']),
    (['train', '--num-workers', '-1'], ['`--num-workers`', '[0, 256]']),
    (['train', '--num-workers', '1000'], ['`--num-workers`', '[0, 256]']),
    (['train', '--device', 'gpu'], ['`--device`', 'cpu, cuda, cuda:N or mps']),
    (['train', '--device', 'cuda:7'], ['`--device`', 'CUDA devices']),
    (['train', '--keep', '-1'], ['`--keep`', '[0, 100000]']),
    (['train', '--sample-every', '-1'], ['`--sample-every`', '[0, 100000]']),
    (['train', '--logger', 'mlflow'], ['`--logger`', "'none', 'tensorboard', 'wandb'"]),
    (['train', '--classes', 'a,b'], ['`--classes`', 'class-conditional']),
    (['train', '--cond', '--classes', 'a,b'], ['`--classes`', 'names 2 classes', '10']),
]

@pytest.mark.parametrize('argv,phrases', CLI, ids=[' '.join(a) for a, _ in CLI])
def test_cli_refuses(argv, phrases, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not where a run already holds `runs/default` (the README's main job leaves one)
    with contextlib.redirect_stderr(io.StringIO()) as err, contextlib.redirect_stdout(io.StringIO()):
        with pytest.raises(SystemExit) as e: main(argv)
    assert e.value.code == 2
    for p in phrases: assert p in err.getvalue(), f"{p!r} not in {err.getvalue()!r}"

@pytest.fixture(scope='module')
def run_dir(tmp_path_factory):
    "A tiny finished run, for the sample and fid rows"
    from diffnotes.runs import train_run
    from diffnotes.data import tensor_dls, load_embedded
    d = tmp_path_factory.mktemp('run')
    emb = load_embedded()
    with contextlib.redirect_stdout(io.StringIO()):
        train_run(RunConfig(channels=(8, 16), epochs=1, bs=32, n_samples=8, sample_steps=2), d, progress=False,
                  dls=tensor_dls(emb['x_train'][:64], emb['x_test'][:32], bs=32))
    return d

SAMPLE = [
    (['--eta', 'inf'], ['`--eta`', '[0, 10]']),
    (['--eta', '-1'], ['`--eta`', '[0, 10]']),
    (['--steps', '0'], ['`--steps`', '[1, 1000]']),
    (['--steps', '5000'], ['`--steps`', '[1, 1000]']),
    (['--n', '0'], ['`--n`', '[1, 1000000]']),
    (['--sampler', 'lms'], ['`--sampler`', "'ddpm', 'ddim', 'dpm', 'euler', 'heun'"]),
    (['--bs', '0'], ['`--bs`', '[1, 65536]']),
    (['--seed', '-1'], ['`--seed`', '[0, 9223372036854775807]']),
    (['--seed', str(2**64)], ['`--seed`', '[0, 9223372036854775807]']),
    (['--n', 'x'], ['argument --n', "invalid int value: 'x'"]),
    (['--label', '3'], ['`--label`', 'needs a class-conditional run']),
    (['--guidance', '2'], ['`--guidance` and `--interval` need a class-conditional run (trained with `--cond`)']),
    (['--interval', '0.3,3'], ['`--guidance` and `--interval` need a class-conditional run']),
    (['--ema-length', '0.1'], ['`--ema-length`', 'has no post-hoc EMA snapshots', '`--phema`']),
    (['--eta', '0.5'], ['`--eta`', "'ddim' sampler only", "'ddpm'"]),
    (['--eta', '0.5', '--sampler', 'heun'], ['`--eta`', "'ddim' sampler only", "'heun'"]),
    (['--device', 'tpu'], ['`--device`', 'cpu, cuda, cuda:N or mps']),
    (['--label', 'Dress'], ['`--label`', 'needs a class-conditional run']),
    (['--guide-ema-length', '0.1'], ['`--guide-ema-length`', 'give a `--guide` run']),
    (['--guide-raw'], ['`--guide-raw`', 'give a `--guide` run']),
    (['--guide-mix', '0.5'], ['`--guide-mix`', 'give a `--guide` run']),
    (['--sampler', 'consistency'], ["`--sampler` 'consistency' needs a 'consistency' run"]),
]

@pytest.mark.parametrize('argv,phrases', SAMPLE, ids=[' '.join(a) for a, _ in SAMPLE])
def test_sample_refuses(run_dir, tmp_path, argv, phrases):
    with contextlib.redirect_stderr(io.StringIO()) as err, contextlib.redirect_stdout(io.StringIO()):
        with pytest.raises(SystemExit) as e: main(['sample', str(run_dir), '--out', str(tmp_path / 's'), *argv])
    assert e.value.code == 2
    for p in phrases: assert p in err.getvalue(), f"{p!r} not in {err.getvalue()!r}"
    assert not list(tmp_path.iterdir())  # nothing written

def test_sample_refuses_bad_guides(run_dir, tmp_path):
    "Autoguidance: a missing guide, a guide of another objective, and w < 1, each refused in one line naming the option"
    ck = torch.load(run_dir / 'model.pt', weights_only=False)
    torch.save({**ck, 'config': {**ck['config'], 'objective': 'eps'}}, tmp_path / 'eps.pt')
    rows = [(['--guide', str(tmp_path / 'nowhere')], ['`--guide`', 'no such run folder or checkpoint']),
            (['--guide', str(tmp_path / 'eps.pt'), '--guidance', '2'],
             ['`--guide` must be a run of the same data, path and objective', "'eps' in the guide, 'v' in the run"]),
            (['--guide', str(run_dir), '--guidance', '0.5'], ['`--guidance` below 1', 'toward the weaker model', 'w ≥ 1']),
            (['--guide', str(run_dir), '--guide-raw', '--guide-ema-length', '0.1'],
             ['`--guide-raw` asks for the guide\'s last weights', '`--guide-ema-length` for an average']),
            (['--guide', str(run_dir), '--guidance', '2', '--guide-mix', '0.5'],
             ['`--guide-mix` shares the guidance', 'class-conditional run (trained with `--cond`)']),
            (['--guide', str(run_dir), '--guidance', '2', '--guide-mix', '1.5'], ['`--guide-mix`', '[0, 1]'])]
    for argv, phrases in rows:
        with contextlib.redirect_stderr(io.StringIO()) as err, contextlib.redirect_stdout(io.StringIO()):
            with pytest.raises(SystemExit) as e: main(['sample', str(run_dir), '--out', str(tmp_path / 's'), *argv])
        assert e.value.code == 2
        for p in phrases: assert p in err.getvalue(), f"{p!r} not in {err.getvalue()!r}"
        assert not (tmp_path / 's.pt').exists()

def test_sample_with_a_guide_writes_its_draw(run_dir, tmp_path):
    "The accepted path beside the refusals: `sample RUN --guide RUN --guidance 2` draws, writes and says what guided it"
    with contextlib.redirect_stdout(io.StringIO()) as out:
        main(['sample', str(run_dir), '--out', str(tmp_path / 'g'), '--n', '4', '--steps', '2',
              '--guide', str(run_dir), '--guidance', '2'])
    assert torch.load(tmp_path / 'g.pt').shape == (4, 1, 32, 32) and (tmp_path / 'g.png').exists()
    assert f'guided by {run_dir} with w = 2' in out.getvalue(), out.getvalue()
    with contextlib.redirect_stdout(io.StringIO()) as out:  # the run guided by its own last weights
        main(['sample', str(run_dir), '--n', '4', '--steps', '2', '--guide', str(run_dir), '--guide-raw', '--guidance', '2'])
    assert f'guided by {run_dir} (its last weights) with w = 2' in out.getvalue(), out.getvalue()
    made = [p.name for p in run_dir.glob('samples-*guide-raw*')]
    assert sorted(made) == [f'samples-ddpm-2-0-w2.0-guide-{run_dir.name}-guide-raw.{e}' for e in ('png', 'pt')], made
    for p in run_dir.glob('samples-*guide-raw*'): p.unlink()

def test_sample_never_overwrites_its_checkpoint(run_dir):
    before = (run_dir / 'model.pt').read_bytes()
    with contextlib.redirect_stderr(io.StringIO()) as err, pytest.raises(SystemExit):
        main(['sample', str(run_dir), '--out', str(run_dir / 'model')])
    assert 'already exists' in err.getvalue()
    assert (run_dir / 'model.pt').read_bytes() == before

def test_sample_refuses_a_diverged_checkpoint(run_dir, tmp_path):
    "A run whose weights hold NaN (diverged, or tampered with): `sample` names the step where the network broke down"
    from diffnotes.checkpoints import load_checkpoint
    ck = load_checkpoint(run_dir)
    weights = [*ck['model'].values(), *ck['ema'].get('shadow_params', [])]  # the raw weights and their average
    for t in weights:
        if t.is_floating_point(): t.fill_(NAN)
    torch.save(ck, tmp_path / 'model.pt')
    with contextlib.redirect_stderr(io.StringIO()) as err, contextlib.redirect_stdout(io.StringIO()):
        with pytest.raises(SystemExit) as e: main(['sample', str(tmp_path / 'model.pt'), '--out', str(tmp_path / 's')])
    assert e.value.code == 2 and "the model's output is not finite" in err.getvalue(), err.getvalue()
    assert sorted(p.name for p in tmp_path.iterdir()) == ['model.pt']  # nothing written

def test_fid_refuses_nan_and_n_boot(run_dir, tmp_path):
    x = torch.load(run_dir / 'samples.pt'); x[0, 0, 0, 0] = NAN; torch.save(x, tmp_path / 'nan.pt')
    for argv, phrase in (([str(tmp_path / 'nan.pt')], '`SAMPLES`'), ([str(run_dir), '--n-boot', '0'], '`--n-boot`')):
        with contextlib.redirect_stderr(io.StringIO()) as err, pytest.raises(SystemExit) as e: main(['fid', *argv])
        assert e.value.code == 2 and phrase in err.getvalue(), err.getvalue()


def _ref_folder(root, n, mode='L', classes=('a', 'b')):
    "`n` random 32×32 images of `mode` in each of `classes` under `root`"
    from PIL import Image
    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (32, 32, 3) if mode == 'RGB' else (32, 32), dtype=np.uint8), mode).save(root / c / f'{i}.png')
    return root

FID_REFS = [  # diffnotes fid RUN + options → phrases; the run holds 8 grey 32×32 samples
    (lambda t: ['--ref', str(_ref_folder(t / 'few', 2))], ['`--ref`', 'holds 4 images, fewer than the 8 samples']),
    (lambda t: ['--ref', str(_ref_folder(t / 'rgb', 6, 'RGB'))], ['`--ref`', 'holds colour images and the samples have 1 channel']),
    (lambda t: ['--ref', str(_ref_folder(t / 'one', 12, classes=('a',)))], ['`--ref`', 'holds 1 class; a classifier needs at least 2']),
    (lambda t: ['--ref', str(t / 'nowhere')], ['`--ref`', 'no such folder']),
    (lambda t: ['--inception', str(t / 'w.txt')], ['`--inception`', 'Inception-v3 weights file']),
    (lambda t: ['--inception', str(t / 'w.pt')], ['`--inception`', 'does not fit the network']),
]

@pytest.mark.parametrize('make,phrases', FID_REFS, ids=['few', 'rgb', 'one class', 'missing', 'text weights', 'other weights'])
def test_fid_refuses_bad_references(run_dir, tmp_path, make, phrases):
    (tmp_path / 'w.txt').write_text('not weights')
    torch.save({'conv.weight': torch.zeros(3, 3)}, tmp_path / 'w.pt')
    with contextlib.redirect_stderr(io.StringIO()) as err, contextlib.redirect_stdout(io.StringIO()):
        with pytest.raises(SystemExit) as e: main(['fid', str(run_dir), *make(tmp_path)])
    assert e.value.code == 2, err.getvalue()
    for p in phrases: assert p in err.getvalue(), f"{p!r} not in {err.getvalue()!r}"
    assert len(err.getvalue().strip().splitlines()) == 2, err.getvalue()  # the error, and where to read more

def test_fid_refuses_one_image(run_dir, tmp_path):
    torch.save(torch.load(run_dir / 'samples.pt')[:1], tmp_path / 'one.pt')
    with contextlib.redirect_stderr(io.StringIO()) as err, pytest.raises(SystemExit) as e: main(['fid', str(tmp_path / 'one.pt')])
    assert e.value.code == 2 and '`SAMPLES`' in err.getvalue(), err.getvalue()


def _variants():
    "Malformed run checkpoints with a valid format tag: name → (change to the good checkpoint, phrases of the message)"
    return {
        'no config': (lambda ck: ck.pop('config'), ["has no 'config' entry"]),
        'config a list': (lambda ck: ck.__setitem__('config', [1, 2]), ["its 'config' must be a dict; got list"]),
        'unknown option': (lambda ck: ck['config'].__setitem__('wings', 2), ["unknown options ['wings']"]),
        'invalid value': (lambda ck: ck['config'].__setitem__('epochs', -3), ['its config is invalid', 'epochs']),
        'wrong type': (lambda ck: ck['config'].__setitem__('channels', 'wide'), ['its config is invalid']),
        'model not a dict': (lambda ck: ck.__setitem__('model', [1]), ["its 'model' must map parameter names to tensors"]),
        'a 3-billion-parameter config': (lambda ck: ck['config'].__setitem__('channels', [4096] * 3),
                                         ['3,273,740,417 parameters', 'above `--max-params` 200,000,000']),
        'weights of another shape': (lambda ck: ck['config'].__setitem__('channels', [8, 32]),
                                     ['its weights do not fit the model its config describes', 'size mismatch']),
        'no model': (lambda ck: ck.pop('model'), ["has no 'model' entry"]),
        'an unknown sampler': (lambda ck: ck['config'].__setitem__('sampler', 'lms'), ['its config is invalid', 'sampler']),
    }

MALFORMED_CMDS = {'sample': lambda p, o: ['sample', str(p), '--out', str(o / 's')],
                  'train --resume': lambda p, o: ['train', '--resume', str(p)],
                  'export': lambda p, o: ['export', str(p), str(o / 'pipe')]}
MALFORMED = [(c, v) for c in MALFORMED_CMDS for v in _variants()]

@pytest.mark.parametrize('cmd,variant', MALFORMED, ids=[f'{c}: {v}' for c, v in MALFORMED])
def test_malformed_checkpoints_exit_2(run_dir, tmp_path, cmd, variant):
    "Each malformed checkpoint, with each command that reads one: exit 2, a message naming the fault, nothing written"
    from diffnotes.checkpoints import load_checkpoint
    ck = load_checkpoint(run_dir)
    change, phrases = _variants()[variant]
    change(ck)
    (tmp_path / 'ck').mkdir(); (tmp_path / 'out').mkdir()
    torch.save(ck, tmp_path / 'ck' / 'model.pt')
    with contextlib.redirect_stderr(io.StringIO()) as err, contextlib.redirect_stdout(io.StringIO()):
        with pytest.raises(SystemExit) as e: main(MALFORMED_CMDS[cmd](tmp_path / 'ck' / 'model.pt', tmp_path / 'out'))
    assert e.value.code == 2, err.getvalue()
    for p in phrases: assert p in err.getvalue(), f"{p!r} not in {err.getvalue()!r}"
    assert not list((tmp_path / 'out').iterdir()) and sorted(p.name for p in (tmp_path / 'ck').iterdir()) == ['model.pt']

RESUME = {
    'no training state': (lambda ck: [ck.pop(k) for k in ('opt', 'rng')], ["cannot resume: the checkpoint has no 'opt', 'rng'"]),
    'epochs_done out of range': (lambda ck: ck.__setitem__('epochs_done', 99), ["'epochs_done' must be an integer in [0, 1]; got 99"]),
    'epochs_done a string': (lambda ck: ck.__setitem__('epochs_done', '1'), ["'epochs_done' must be an integer"]),
    'optimiser state of the wrong kind': (lambda ck: ck.__setitem__('opt', 'adam'), ['its training state cannot be restored']),
    'random state of the wrong kind': (lambda ck: ck.__setitem__('rng', {}), ['its training state cannot be restored']),
}

@pytest.mark.parametrize('variant', list(RESUME))
def test_malformed_training_state_exits_2(run_dir, tmp_path, variant):
    from diffnotes.checkpoints import load_checkpoint
    ck = load_checkpoint(run_dir)
    change, phrases = RESUME[variant]
    change(ck)
    torch.save(ck, tmp_path / 'model.pt')
    with contextlib.redirect_stderr(io.StringIO()) as err, contextlib.redirect_stdout(io.StringIO()):
        with pytest.raises(SystemExit) as e: main(['train', '--resume', str(tmp_path)])
    assert e.value.code == 2, err.getvalue()
    for p in phrases: assert p in err.getvalue(), f"{p!r} not in {err.getvalue()!r}"

ARCHIVES = {
    'a deflate bomb': (b'\0' * 20_000_000, ['a decompression bomb?']),
    'half a checkpoint (a killed copy)': (None, ['is not a readable checkpoint']),
}

@pytest.mark.parametrize('variant', list(ARCHIVES))
@pytest.mark.parametrize('cmd', list(MALFORMED_CMDS))
def test_hostile_archives_exit_2_before_decompressing(run_dir, tmp_path, cmd, variant):
    import zipfile
    data, phrases = ARCHIVES[variant]
    (tmp_path / 'ck').mkdir(); (tmp_path / 'out').mkdir()
    f = tmp_path / 'ck' / 'model.pt'
    if data is None: f.write_bytes((run_dir / 'model.pt').read_bytes()[:20_000])
    else:
        with zipfile.ZipFile(f, 'w', compression=zipfile.ZIP_DEFLATED) as z: z.writestr('archive/data.pkl', data)
    with contextlib.redirect_stderr(io.StringIO()) as err, contextlib.redirect_stdout(io.StringIO()):
        with pytest.raises(SystemExit) as e: main(MALFORMED_CMDS[cmd](f, tmp_path / 'out'))
    assert e.value.code == 2
    for p in phrases: assert p in err.getvalue(), f"{p!r} not in {err.getvalue()!r}"
    assert not list((tmp_path / 'out').iterdir())

FILESYSTEM = [
    ('train into a file', lambda d: (d / 'f').write_text('x') and ['train', '--out', str(d / 'f'), '--epochs', '1'], ['`--out`', 'File exists']),
    ('train under a file', lambda d: (d / 'f').write_text('x') and ['train', '--out', str(d / 'f' / 'run'), '--epochs', '1'],
     ['`--out`', 'Not a directory']),
    ('tables into a file', lambda d: (d / 'f').write_text('x') and ['tables', '--out', str(d / 'f')], ['`--out`', 'File exists']),
]

@pytest.mark.parametrize('name,make,phrases', FILESYSTEM, ids=[n for n, _, _ in FILESYSTEM])
def test_filesystem_faults_exit_2(tmp_path, name, make, phrases):
    "Outputs that cannot be written: one line naming the option and the path, exit 2, no traceback"
    argv = make(tmp_path)
    with contextlib.redirect_stderr(io.StringIO()) as err, contextlib.redirect_stdout(io.StringIO()):
        with pytest.raises(SystemExit) as e: main(argv)
    assert e.value.code == 2 and 'Traceback' not in err.getvalue(), err.getvalue()
    for p in phrases: assert p in err.getvalue(), f"{p!r} not in {err.getvalue()!r}"

def _mount(d, size='16k'):
    "A tmpfs of `size` at `d`, or a skip where this machine does not let the tests mount one (not root, a container)"
    import shutil, subprocess
    d.mkdir(parents=True, exist_ok=True)
    if not shutil.which('mount'): pytest.skip('no `mount` command here')
    r = subprocess.run(['mount', '-t', 'tmpfs', '-o', f'size={size},mode=0777', 'tmpfs', str(d)], capture_output=True, text=True)
    if r.returncode: pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()[:200]}")
    return d

def _read_only(d):
    "Remount the tmpfs at `d` read-only (root writes through file modes, so a mode would test nothing)"
    import subprocess
    subprocess.run(['mount', '-o', 'remount,ro', str(d)], check=True)

@pytest.fixture
def disk(tmp_path):
    "A small disk of its own at `tmp_path/disk`, unmounted after the test"
    import subprocess
    d = tmp_path / 'disk'
    yield d
    if d.is_mount(): subprocess.run(['umount', '-l', str(d)], check=False)

def _unfinished(run_dir, d):
    "A copy of `run_dir` in `d` planned for 2 epochs with 1 done: a run killed after its first checkpoint"
    from diffnotes.checkpoints import load_checkpoint
    ck = load_checkpoint(run_dir)
    ck['config']['epochs'] = 2
    (d / 'run').mkdir()
    torch.save(ck, d / 'run' / 'model.pt')
    return d / 'run'

def _du(d): return sum(f.stat().st_size for f in d.rglob('*') if f.is_file())

DISK = {
    # name: (size of the disk, what to put on it, the command, phrases, read-only)
    'train onto a full disk': ('32k', None, lambda r, d: ['train', '--data', str(_folder(d.parent / 'data', 40)), '--bs', '16',
                               '--channels', '8,16', '--epochs', '1', '--out', str(d / 'run')], ['`--out`', 'No space left on device'], False),
    'resume onto a full disk': (None, _unfinished, lambda r, d: ['train', '--resume', str(d / 'run')], ['`--resume`', 'No space left on device'], False),
    'sample onto a full disk': ('8k', None, lambda r, d: ['sample', str(r), '--n', '8', '--steps', '2', '--out', str(d / 's')],
                                ['`--out`', 'No space left on device'], False),
    'export onto a full disk': ('8k', None, lambda r, d: ['export', str(r), str(d / 'pipe')], ['No space left on device'], False),
    'tables onto a full disk': ('8k', None, lambda r, d: ['tables', '--out', str(d / 'fig')], ['`--out`', 'No space left on device'], False),
    'train into a read-only folder': ('1m', None, lambda r, d: ['train', '--epochs', '1', '--out', str(d / 'run')],
                                      ['`--out`', 'Read-only file system'], True),
    'sample into a read-only folder': ('1m', None, lambda r, d: ['sample', str(r), '--n', '8', '--out', str(d / 's')],
                                       ['`--out`', 'Read-only file system'], True),
    'export into a read-only folder': ('1m', None, lambda r, d: ['export', str(r), str(d / 'pipe')], ['Read-only file system'], True),
    'tables into a read-only folder': ('1m', None, lambda r, d: ['tables', '--out', str(d / 'fig')],
                                       ['`--out`', 'Read-only file system'], True),
}

@pytest.mark.parametrize('name', list(DISK))
def test_full_and_read_only_disks_exit_2(run_dir, disk, name):
    "Writes that fail on a real filesystem: one line naming the option and the error, exit 2, the disk as it was"
    size, put, argv, phrases, ro = DISK[name]
    if put is None: _mount(disk, size)
    else:  # a disk just large enough for what is put on it, so that the next checkpoint cannot fit beside it
        import shutil
        (disk.parent / 'staged').mkdir()
        staged = put(run_dir, disk.parent / 'staged')
        _mount(disk, f'{(_du(staged) // 4096 + 4) * 4}k')
        shutil.copytree(staged, disk / staged.name)
    before = {f.relative_to(disk): f.read_bytes() for f in disk.rglob('*') if f.is_file()}
    if ro: _read_only(disk)
    with contextlib.redirect_stderr(io.StringIO()) as err, contextlib.redirect_stdout(io.StringIO()):
        with pytest.raises(SystemExit) as e: main(argv(run_dir, disk))
    assert e.value.code == 2 and 'Traceback' not in err.getvalue(), err.getvalue()
    assert len(err.getvalue().strip().splitlines()[-1]) < 400 and 'error:' in err.getvalue(), err.getvalue()
    for p in phrases: assert p in err.getvalue(), f"{p!r} not in {err.getvalue()!r}"
    after = {f.relative_to(disk): f.read_bytes() for f in disk.rglob('*') if f.is_file()}
    assert after == before, sorted(map(str, set(after) ^ set(before)))  # nothing partial, nothing lost

def _folder(d, n=12, extra=None):
    "A folder of `n` embedded images in one class folder, with `extra` (name → bytes) beside them"
    from PIL import Image
    from diffnotes.data import load_embedded
    (d / 'x').mkdir(parents=True, exist_ok=True)
    x = load_embedded()['x_train']
    for i in range(n): Image.fromarray(x[i]).save(d / 'x' / f'{i}.png')
    for k, v in (extra or {}).items(): (d / 'x' / k).write_bytes(v)
    return d

FOLDERS = [
    ('an empty folder', lambda d: d, [], ['`--data`', 'no images found in it']),
    ('a folder of text files', lambda d: (d / 'notes.txt').write_text('x') and d, [], ['`--data`', 'no images found in it']),
    ('a broken png', lambda d: _folder(d, 12, {'broken.png': b'junk'}), [], ['`--data`', '1 of 13 images cannot be read (x/broken.png)', '`--skip-bad`']),
    ('a truncated png', lambda d: _folder(d, 12, {'cut.png': b'\x89PNG\r\n\x1a\n' + b'\0' * 20}), [], ['cannot be read (x/cut.png)']),
    ('only broken images', lambda d: _folder(d, 0, {'a.png': b'junk', 'b.jpg': b'junk'}), ['--skip-bad'], ['`--data`', 'none of its images can be read']),
    ('a batch larger than the data', lambda d: _folder(d, 12), ['--bs', '64'], ['`--bs` 64 is larger than the 11 training images']),
    ('--cond: an empty class folder', lambda d: (_folder(d, 12), (d / 'y').mkdir()) and d, ['--cond'],
     ['`--data`', 'with `--cond`', 'each class folder needs at least 2 images', 'has none']),
    ('--cond: a class folder of one image', lambda d: _class_of_one(d), ['--cond'],
     ['`--data`', 'with `--cond`', 'needs at least 2 images', "'y' has 1"]),
    ('--cond: an image outside the class folders', lambda d: _loose(d), ['--cond'],
     ['`--data`', 'with `--cond`', 'each image must sit in a class folder']),
]

def _class_of_one(d):
    _folder(d, 12)
    (d / 'y').mkdir()
    shutil.copy(d / 'x' / '0.png', d / 'y' / '0.png')
    return d

def _loose(d):
    _folder(d, 12)
    shutil.copy(d / 'x' / '0.png', d / 'loose.png')
    return d

@pytest.mark.parametrize('name,make,extra,phrases', FOLDERS, ids=[f[0] for f in FOLDERS])
def test_image_folders_exit_2(tmp_path, name, make, extra, phrases):
    "`train --data FOLDER` on folders a user may have: exit 2, a message naming the option, nothing written"
    (tmp_path / 'data').mkdir()
    data = make(tmp_path / 'data')
    with contextlib.redirect_stderr(io.StringIO()) as err, contextlib.redirect_stdout(io.StringIO()):
        with pytest.raises(SystemExit) as e: main(['train', '--data', str(data), '--out', str(tmp_path / 'run'), *extra])
    assert e.value.code == 2, err.getvalue()
    for p in phrases: assert p in err.getvalue(), f"{p!r} not in {err.getvalue()!r}"
    assert not (tmp_path / 'run').exists()

def test_symlink_loop_ends_and_counts_each_image_once(tmp_path):
    import os
    from diffnotes.data import image_files
    (tmp_path / 'data').mkdir()
    d = _folder(tmp_path / 'data', 6)
    os.symlink(d, d / 'x' / 'loop'); os.symlink(d / 'x', d / 'twice')
    assert len(image_files(d)) == 6

def table():
    "The rows of this file by class of fault: the parametrized tables, and the single cases as one row each"
    return {'API arguments': len(API), 'command-line options': len(CLI) + len(SAMPLE) + len(FID_REFS) + 2,  # + fid's NaN and --n-boot, one image
            'malformed checkpoints': len(MALFORMED) + len(RESUME) + 2,                  # + an empty one, a diverged one
            'hostile archives': len(ARCHIVES) * len(MALFORMED_CMDS),
            'the filesystem': len(FILESYSTEM) + len(DISK) + 1,                          # + sample never overwrites its input
            'image folders': len(FOLDERS) + 1}                                          # + the symlink loop

def test_table_size():
    rows = table()
    assert sum(rows.values()) >= 250 and min(rows.values()) >= 5, rows
