"""The chunked, response-only loss equals the plain causal-LM loss, and so do its gradients."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from llmlab.finetune.lean_loss import response_token_loss  # noqa: E402


def plain_loss(hidden, weight, labels, bias=None, num_items_in_batch=None):
    """What transformers' ForCausalLMLoss computes from the full logits."""
    logits = torch.nn.functional.linear(hidden, weight, bias).float()
    shifted = torch.nn.functional.pad(labels, (0, 1), value=-100)[..., 1:]
    reduction = "sum" if num_items_in_batch is not None else "mean"
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), shifted.reshape(-1),
                                             ignore_index=-100, reduction=reduction)
    return loss / num_items_in_batch if num_items_in_batch is not None else loss


def make(seed=0, batch=3, seq=37, dim=16, vocab=101, frac=0.6):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(batch, seq, dim, generator=g, dtype=torch.float64)
    weight = torch.randn(vocab, dim, generator=g, dtype=torch.float64) * 0.3
    labels = torch.randint(0, vocab, (batch, seq), generator=g)
    labels[torch.rand(batch, seq, generator=g) > frac] = -100  # prompt tokens carry no label
    return hidden, weight, labels


@pytest.mark.parametrize("chunk", [1, 7, 1000])
@pytest.mark.parametrize("num_items", [None, 23])
def test_chunked_loss_and_gradients_equal_the_plain_ones(chunk, num_items):
    hidden, weight, labels = make()
    bias = torch.randn(weight.shape[0], dtype=torch.float64)
    h1, w1, b1 = (t.clone().requires_grad_() for t in (hidden, weight, bias))
    h2, w2, b2 = (t.clone().requires_grad_() for t in (hidden, weight, bias))
    ref = plain_loss(h1, w1, labels, b1, num_items)
    ref.backward()
    loss, n, correct = response_token_loss(h2, w2, labels, bias=b2, num_items_in_batch=num_items, chunk_tokens=chunk)
    loss.backward()
    assert n == int((labels[:, 1:] != -100).sum())
    assert 0 <= correct <= n
    assert abs(loss.item() - ref.item()) < 1e-5
    for a, b in ((h1, h2), (w1, w2), (b1, b2)):
        assert torch.allclose(a.grad, b.grad, atol=1e-5), (a.grad - b.grad).abs().max()


def test_float32_loss_matches_to_1e5():
    hidden, weight, labels = make(seed=3, batch=2, seq=64, dim=32, vocab=500)
    hidden, weight = hidden.float().requires_grad_(), weight.float()
    ref = plain_loss(hidden, weight, labels)
    loss, _, _ = response_token_loss(hidden, weight, labels, chunk_tokens=10)
    assert abs(loss.item() - ref.item()) < 1e-5
    (g_ref,) = torch.autograd.grad(ref, hidden)
    (g,) = torch.autograd.grad(loss, hidden)
    assert torch.allclose(g, g_ref, atol=1e-5)


def test_token_accuracy_counts_argmax_hits():
    hidden = torch.eye(4).unsqueeze(0)  # position t's logits peak at token t
    weight = torch.eye(4)
    # position t is scored against labels[t + 1]
    _, n, correct = response_token_loss(hidden, weight, torch.tensor([[-100, 0, 1, 2]]))
    assert (n, correct) == (3, 3)
    assert response_token_loss(hidden, weight, torch.tensor([[-100, 1, 2, 3]]))[1:] == (3, 0)
    assert response_token_loss(hidden, weight, torch.tensor([[-100, 0, 2, -100]]))[1:] == (2, 1)


def test_no_labelled_token_gives_zero_loss_in_the_graph():
    hidden, weight, labels = make()
    labels[:] = -100
    h = hidden.clone().requires_grad_()
    loss, n, _ = response_token_loss(h, weight, labels)
    loss.backward()
    assert n == 0 and loss.item() == 0.0 and torch.count_nonzero(h.grad) == 0


def test_lean_forward_equals_the_models_own_loss_with_lora():
    """A tiny random Llama with LoRA adapters: same loss, same adapter gradients as ``model(labels=…)``."""
    transformers = pytest.importorskip("transformers")
    peft = pytest.importorskip("peft")
    from llmlab.finetune.lean_loss import lean_forward, supports_lean_loss

    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                   tie_word_embeddings=True)
    base = transformers.LlamaForCausalLM(cfg).float()
    model = peft.get_peft_model(base, peft.LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules="all-linear",
                                                       task_type="CAUSAL_LM"))
    for name, p in model.named_parameters():  # LoRA B starts at zero: give the adapters a real gradient path
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.02)
    assert supports_lean_loss(model.get_base_model())
    ids = torch.randint(0, 300, (2, 20))
    mask = torch.ones_like(ids)
    mask[1, 15:] = 0  # a padded row
    labels = ids.clone()
    labels[:, :6] = -100  # the prompt
    labels[mask == 0] = -100
    inputs = {"input_ids": ids, "attention_mask": mask}

    ref = model(**inputs, labels=labels).loss
    ref_grads = torch.autograd.grad(ref, [p for p in model.parameters() if p.requires_grad])
    loss, n, _ = lean_forward(model, {**inputs, "labels": labels}, chunk_tokens=5)
    grads = torch.autograd.grad(loss, [p for p in model.parameters() if p.requires_grad])
    assert n == int((labels[:, 1:] != -100).sum())
    assert abs(loss.item() - ref.item()) < 1e-5
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(grads, ref_grads))
