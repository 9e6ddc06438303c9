"""Published hand-designed small MNIST models ("peers"), re-measured with this suite's harness.

Each is written in the architecture grammar (models/arch.py), layer for layer: its parameter
count equals the published one (tests/test_peers.py). Its recipe is its published training
recipe as Config overrides (applied under the user's own flags, like a champion's), with the
peer's own epoch count; where this harness cannot copy a detail, the member's comment says so.
Accuracies are the authors' claims, one run each on the MNIST test split (torchvision loaders,
GPU); this suite's own runs are the rows in results/runs.csv.
"""

from . import families  # noqa: F401  (the families come first)
from .arch import parse
from .registry import family, register


@family
def handmade(arch: str = "v8-v16-p-t8-v12-v16-v16-t10-gap|do0.05") -> str:
    """A network designed by hand elsewhere, given directly as its architecture string."""
    return str(parse(arch))


# Shwethaamrutha/TSAI-S6, Final_Model.py ("OptimizedNetV36") and README.md: 6,260 params,
# claimed 99.44% at epoch 15 (99.42% mean of epochs 13-15). Every conv has a bias and BN after
# it; the 1x1 classifier after the last pool-free stage has a bias; no dropout.
# Recipe: SGD(momentum 0.98, weight decay 5e-5), OneCycleLR(max_lr 0.05, pct_start 0.05,
# div_factor 10, final_div_factor 100, torch's defaults: cos anneal, momentum cycled 0.95 ->
# 0.85 -> 0.95, which overrides the 0.98), batch 128, 15 epochs, RandomAffine(7 degrees,
# translate 0.1). Not exact here: the published pipeline also pads by 2 and random-crops 28
# before the affine (a further +-2 px shift); this harness has no such crop.
@register
def peer_shwetha_6k():
    return dict(
        family="handmade", arch="c8b-c10b-p-c12b-p-c16b-c16b-t10-gap|do0",
        recipe=dict(epochs=15, batch_size=128, optimizer="sgd", lr=0.05, momentum=0.98,
                    nesterov=False, weight_decay=5e-5, schedule="onecycle", warmup=0.05,
                    div_factor=10.0, final_div_factor=100.0, anneal="cos", cycle_momentum=True,
                    label_smoothing=0.0, rotate=7.0, translate=0.1),
        source="Shwethaamrutha/TSAI-S6 Final_Model.py",
        claim="99.44% at epoch 15")


# nitin-vig/ERAv4S6, MNIST_Final_Version.ipynb (README "Iteration 3"): 7,070 params, claimed
# >99.4% from epoch 11 (99.42% at epoch 15, 99.45% best). Each 3x3 conv has a bias and runs
# conv -> ReLU -> BN; the two 1x1 squeezes are bias-free, also -> ReLU -> BN, and the last one's
# BN gives the 10 logits (AvgPool 5x5 = GAP); no dropout.
# Recipe: SGD(lr 0.01, momentum 0.9), StepLR(10 epochs, 0.1), batch 128, 15 epochs, no
# augmentation.
@register
def peer_nitinvig_7k():
    return dict(
        family="handmade", arch="v10ab-v10ab-v20ab-p-t10a-v10ab-v10ab-v20ab-t10a-gap|do0",
        recipe=dict(epochs=15, batch_size=128, optimizer="sgd", lr=0.01, momentum=0.9,
                    nesterov=False, weight_decay=0.0, schedule="step", step_size=10, gamma=0.1,
                    label_smoothing=0.0, rotate=0.0, translate=0.0),
        source="nitin-vig/ERAv4S6 MNIST_Final_Version.ipynb",
        claim="99.42% at epoch 15 (> 99.4 from epoch 11)")


# snehanshu-raj/ERA, assignment_6/model_3.py and assignment_6/Readme.md ("Model 3"): 7,918
# params, claimed 99.52% best (epoch 11), 99.50% at epoch 15. Bias-free conv -> BN -> ReLU
# throughout, no dropout; after GAP a bias-free 1x1 conv 16 -> 10 (= a bias-free linear, fcn).
# Recipe: Adam(lr 0.005, torch's defaults otherwise), StepLR(8 epochs, 0.1), batch 64,
# 15 epochs, RandomRotation(7).
@register
def peer_snehanshu_8k():
    return dict(
        family="handmade", arch="c10-c10-c10-p-v16-v16-v8-v8-t8-t16-gap-fcn|do0",
        recipe=dict(epochs=15, batch_size=64, optimizer="adam", lr=0.005, weight_decay=0.0,
                    schedule="step", step_size=8, gamma=0.1, label_smoothing=0.0, rotate=7.0,
                    translate=0.0),
        source="snehanshu-raj/ERA assignment_6/model_3.py",
        claim="99.50% at epoch 15 (99.52% best)")


# The-School-of-AI/era-s6-ram, model.py, ram-s5.ipynb and README.md: 8,932 params (the layers
# forward() uses; model.py also defines an unused convblock7b), claimed 99.50% at epoch 15.
# Bias-free conv -> BN -> ReLU -> Dropout(0.05) in every block, a bias-free 1x1 classifier,
# AvgPool 7x7 (= GAP). Recipe: SGD(lr 0.1, momentum 0.9), no schedule, batch 128, 15 epochs,
# RandomRotation(35). Not exact here: the published rotation fills corners with pixel value 1
# (of 255), this harness with 0.
@register
def peer_ram_9k():
    return dict(
        family="handmade", arch="v4-v4-v8-p-t8-v16-v16-c16-c16-t10n-gap|do0.05",
        recipe=dict(epochs=15, batch_size=128, optimizer="sgd", lr=0.1, momentum=0.9,
                    nesterov=False, weight_decay=0.0, schedule="constant", label_smoothing=0.0,
                    rotate=35.0, translate=0.0),
        source="The-School-of-AI/era-s6-ram model.py",
        claim="99.50% at epoch 15")


# minakshimathpal/Full_Stack_AI, branch Assignment_7 (937e04d), Assignment_7/model_3.ipynb and
# README.md ("Model 3"): 5,797 params, claimed 99.48% best (its log's "EPOCH: 11", the 12th),
# >= 99.4 from there on, 99.44% at epoch 15. Bias-free conv -> ReLU -> BN -> Dropout(0.01) in
# every block (the 3x3 at 10x10 padded, the others not); after GAP a 1x1 conv 15 -> 10 with a
# bias (= a linear, fc). Recipe: Adam(lr 0.003, weight decay 5e-5), OneCycleLR(max_lr 0.003,
# pct_start 0.2, div_factor 25, final_div_factor 1000, cos anneal, torch's default cycling of
# Adam's beta1 0.95 -> 0.85 -> 0.95), batch 128, 15 epochs, RandomRotation(5) then
# RandomAffine(translate 0.05, scale 0.98-1.02). (main later deleted the folder: cite the branch.)
# Not exact here: torchvision resamples twice, nearest-neighbour, shifts by whole pixels and fills
# the rotation's corners with 1 (of 255); this harness draws one bilinear affine map, zero fill.
@register
def peer_minakshi_6k():
    return dict(
        family="handmade", arch="v8a-v10a-p-v12a-c15a-p-v15a-gap-fc|do0.01",
        recipe=dict(epochs=15, batch_size=128, optimizer="adam", lr=0.003, weight_decay=5e-5,
                    schedule="onecycle", warmup=0.2, div_factor=25.0, final_div_factor=1000.0,
                    anneal="cos", cycle_momentum=True, label_smoothing=0.0, rotate=5.0,
                    translate=0.05, scale=0.02),
        source="minakshimathpal/Full_Stack_AI Assignment_7/model_3.ipynb",
        claim="99.44% at epoch 15 (99.48% best, >= 99.4 from epoch 12)")


# deepanshudashora/ERAV1, session7/Module 3 (Final Results)/Best_with_reduced_param/model.py,
# its notebook S7_Reduced_param_99.4.ipynb and session7/README.md ("Final Submission"): 6,084
# params, claimed 99.45% (the best epochs, 13 and 14 of 15; its log's epoch 15: 99.39%).
# Bias-free conv -> ReLU -> BN throughout (Dropout(0.0)), two bias-free 1x1 squeezes 10 -> 8 -> 4
# after the pool, AvgPool 4x4 (= GAP), then a bias-free 1x1 conv 16 -> 10 (= a bias-free
# linear, fcn). Recipe: SGD(lr 0.01, momentum 0.9), StepLR(6 epochs, 0.3), batch 64, 15 epochs,
# RandomRotation(5). Not exact here: a tenth of its training images are also center-cropped to
# 24 and resized back to 28 (a 1.17x zoom), which this harness's uniform zoom cannot copy, and
# its rotation comes after Normalize, so the corners it fills are the mean grey, not black.
@register
def peer_deepanshu_6k():
    return dict(
        family="handmade", arch="v4a-v10a-p-t8a-t4a-v10a-v16a-v12a-v16a-gap-fcn|do0",
        recipe=dict(epochs=15, batch_size=64, optimizer="sgd", lr=0.01, momentum=0.9,
                    nesterov=False, weight_decay=0.0, schedule="step", step_size=6, gamma=0.3,
                    label_smoothing=0.0, rotate=5.0, translate=0.0),
        source="deepanshudashora/ERAV1 session7/Module 3 (Final Results)/"
               "Best_with_reduced_param/model.py",
        claim="99.45% best (epochs 13-14; 99.39% at epoch 15)")


# Not published: peer_minakshi_6k's layout narrowed here (its 10- and 15-channel convs to 8 and
# 12), trained with nas_plain_5k's recipe, with which the peer itself reached 99.4% on all five
# test seeds. experiments/peer-layout.sh scored it on validation seed 1 (99.31%, the peer 99.33%);
# its test runs are the rows of this architecture in results/runs.csv.
@register
def twopool_4k():
    from .champions import nas_plain_5k  # the recipe, read from the member, not copied

    return dict(family="handmade", arch="v8a-v8a-p-v12a-c12a-p-v12a-gap-fc|do0.01",
                recipe=nas_plain_5k()["recipe"])


# adilsammar/woolly-of-cv, assets/mnist/mnist/model.py (Net(base_channels=4, layers=3)) and
# assets/mnist/notebook/MNIST_ALBUMENTATION_3762_99.52.ipynb, with the mnist/ package of the
# notebook's commit (fc4d778): 3,762 params, claimed 99.52% at epoch 15 (>= 99.4 at epochs 9
# and 12-15). Three blocks of three padded 3x3 convs (4, 8, 8 channels), each conv with a bias
# -> BN -> ReLU, a max-pool and Dropout(0.01) after blocks 1 and 2 only, GAP, then a 1x1 conv
# 8 -> 10 with a bias (= a linear, fc). Recipe: batch 32, 15 epochs, SGD without weight decay,
# the rate set once per epoch: 0.05 -> 0.1 at the 3rd epoch, then down to 0.0017 at the last;
# Xavier-uniform weights, zero biases; per image with p 0.5 each, albumentations'
# ShiftScaleRotate(shift 0.09, scale 0.09, 7 degrees) and RandomBrightnessContrast(0.2, 0.2).
# SGD's momentum is 0.95, not the 0 its code asks for: the notebook also builds torch's
# OneCycleLR on the optimizer, which sets momentum 0.95 at construction (cycle_momentum), and
# never steps it; its own per-epoch schedule sets only the rate.
# Not exact here: the published fall has a knee (0.1 -> 0.01 by the 9th epoch, then slowly to
# 0.0017), a one-cycle falls in one straight line (0.051 at the 9th); albumentations fills
# the borders a shift or rotation uncovers by reflection, this harness with black; its epochs
# drift one batch per epoch against the rate changes. Its "validation" split is the test split.
@register
def peer_adilsammar_4k():
    return dict(
        family="handmade",
        arch="c4b-c4b-c4b-p-do0.01-c8b-c8b-c8b-p-do0.01-c8b-c8b-c8b-gap-fc|do0",
        recipe=dict(epochs=15, batch_size=32, optimizer="sgd", lr=0.1, momentum=0.95,
                    nesterov=False, weight_decay=0.0, schedule="onecycle", warmup=0.2,
                    div_factor=2.0, final_div_factor=30.0, anneal="linear",
                    cycle_momentum=False, schedule_step="epoch", init="xavier",
                    label_smoothing=0.0, rotate=7.0, translate=0.09, scale=0.09, shear=0.0,
                    augment_p=0.5, brightness=0.2, contrast=0.2),
        source="adilsammar/woolly-of-cv assets/mnist/notebook/"
               "MNIST_ALBUMENTATION_3762_99.52.ipynb",
        claim="99.52% at epoch 15 (>= 99.4 at epochs 9 and 12-15)")


# adilsammar/woolly-of-cv, assets/mnist/notebook/MNIST_4838_9942.ipynb (its own Net) and
# assets/mnist/docs/MNIST.md: 4,838 params, claimed 99.42% best (epoch 8), 99.41% at epoch 12.
# Three blocks of two padded 3x3 convs (4, 8, 16 channels), each conv with a bias -> ReLU ->
# BN, a max-pool after blocks 1 and 2, Dropout(0.01) after every block, then a 1x1 conv
# 16 -> 10 with a bias, then GAP. Recipe: batch 64, 12 epochs, Adam without weight decay, the
# rate set once per epoch: 0.001 -> 0.01 at the 3rd epoch, then down to 0.00003 at the last;
# Xavier-uniform weights, zero biases; RandomResizedCrop(28, area 0.85-1) then
# RandomRotation(5). Not exact here: the published fall has a knee (0.01 -> 0.0002 by the 6th
# epoch, then slowly on), a one-cycle falls in one straight line (0.0067 at the 6th); Adam's
# beta1 is 0.95 there (an unused OneCycleLR cycles it at construction), torch's 0.9 here; the
# crop (zoom 1 to 1.085, aspect 3:4 to 4:3, up to ~1 px off centre) becomes a zoom of 1 +- 0.085
# and a shift of up to 4% of the side drawn apart; the rotation is nearest-neighbour there.
# Its "validation" split is the test split.
@register
def peer_adilsammar_5k():
    return dict(
        family="handmade",
        arch="c4ab-c4ab-p-do0.01-c8ab-c8ab-p-do0.01-c16ab-c16ab-do0.01-t10-gap|do0",
        recipe=dict(epochs=12, batch_size=64, optimizer="adam", lr=0.01, weight_decay=0.0,
                    schedule="onecycle", warmup=0.25, div_factor=10.0, final_div_factor=35.0,
                    anneal="linear", cycle_momentum=False, schedule_step="epoch",
                    init="xavier", label_smoothing=0.0, rotate=5.0, translate=0.04,
                    scale=0.085, shear=0.0),
        source="adilsammar/woolly-of-cv assets/mnist/notebook/MNIST_4838_9942.ipynb",
        claim="99.41% at epoch 12 (99.42% best, epoch 8)")


# Not published: peer_adilsammar_4k as a member of the staged family, i.e. without its conv
# biases (each cancelled by the BatchNorm after it) and its head's bias: 3,692 params, the
# functions the peer computes but for the head's 10 offsets, trained with the peer's recipe.
@register
def staged_4k():
    return dict(family="staged", widths=(4, 8, 8), depths=(3, 3, 3), head="fcn", dropout=0.01,
                recipe=peer_adilsammar_4k()["recipe"])
