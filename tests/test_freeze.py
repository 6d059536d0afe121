"""`deepconv fine-tune --freeze PATTERN`: the matching layers keep their weights, the others train."""


import torch
from helpers import QUICKSTART_A

from deepconv_cli.__main__ import main as deepconv


def test_freeze_features_trains_only_the_fc_layers(trained_ckpt, digits_dir, tmp_path):
    run = tmp_path / "fc_only"
    assert deepconv(["fine-tune", "-c", str(QUICKSTART_A), f"--init-from={trained_ckpt}", "--freeze", "features",
                     f"--data.data_dir={digits_dir}", f"--trainer.default_root_dir={run}", "--trainer.max_epochs=1",
                     "--trainer.limit_train_batches=4", "--trainer.limit_val_batches=1",
                     "--trainer.enable_progress_bar=false", "--data.num_workers=0"]) == 0
    before = torch.load(trained_ckpt, map_location="cpu", weights_only=False)["state_dict"]
    after = torch.load(run / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]
    convs = [k for k in before if ".features." in k]
    fcs = [k for k in before if ".classifier." in k and k.endswith("weight")]
    assert convs and fcs
    assert all(torch.equal(before[k], after[k]) for k in convs)
    assert all(not torch.equal(before[k], after[k]) for k in fcs)


def test_freeze_pattern_matching_nothing_is_one_line_exit_2(trained_ckpt, digits_dir, tmp_path, capsys):
    assert deepconv(["fine-tune", "-c", str(QUICKSTART_A), f"--init-from={trained_ckpt}", "--freeze", "nothing_x",
                     f"--data.data_dir={digits_dir}", f"--trainer.default_root_dir={tmp_path / 'r'}"]) == 2
    assert "matches no parameter" in capsys.readouterr().err
