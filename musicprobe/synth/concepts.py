"""Personal concepts for SteerMusic+: voices the mini models never heard, reference clips and exact targets.

A :class:`Concept` is what a user brings to personalised editing: a handful of short recordings of one voice and
a class word for it ("string instrument"). The corpus's concepts are synthesised (``CONCEPT_INSTRUMENTS``: a
plucked lute with a doubled course, a marimba-like struck bar), so every source clip also has its exact target:
the same notes re-rendered with the concept on the melody. A user's own recordings enter the same way through
:func:`musicprobe.editors.concepts.ConceptSet.from_folder`.

Concept clips come from their own seed range (:data:`CONCEPT_SEED`), disjoint from the training corpus (seed 7)
and from the benchmark's source clips (their melodies are those of the presence probes' fitting clips, a metric's
seed, played by the concept alone); nothing here touches the corpus's own plans: existing seeds render as before.
"""

from __future__ import annotations

from dataclasses import dataclass

from musicprobe.errors import check_known
from musicprobe.synth.captions import captions
from musicprobe.synth.corpus import Clip, EditPair, clip_from_plan, clip_seed
from musicprobe.synth.instruments import CONCEPT_INSTRUMENTS
from musicprobe.synth.render import render_score
from musicprobe.synth.score import make_plan, realize

CONCEPT_SEED = 4242
TOKEN = "sks"  # DreamBooth's rare identifier


@dataclass(frozen=True)
class Concept:
    """A concept voice (``name``, one of ``CONCEPT_INSTRUMENTS``) and the class word its prompts use."""

    name: str
    class_word: str
    token: str = TOKEN

    @property
    def instance_phrase(self) -> str:
        """How a prompt names the concept: ``"sks string instrument"``."""
        return f"{self.token} {self.class_word}"

    def reference_prompt(self) -> str:
        """DreamSound's fine-tuning prompt: ``"a recording of a sks string instrument"``."""
        return f"a recording of a {self.instance_phrase}"

    def class_prompt(self) -> str:
        """The prior-preservation prompt: ``"a recording of a string instrument"``."""
        return f"a recording of a {self.class_word}"


CONCEPTS: dict[str, Concept] = {
    "lute": Concept("lute", "string instrument"),
    "marimba": Concept("marimba", "mallet instrument"),
}


def get_concept(name: str) -> Concept:
    return CONCEPTS[check_known("concept", name, CONCEPTS)]


def concept_clips(name: str, n: int = 6, *, seed: int = CONCEPT_SEED, duration: float = 5.0) -> list[Clip]:
    """``n`` solo recordings of concept ``name``: melodies of their own seeds played by the concept alone."""
    concept = get_concept(name)
    out = []
    for i in range(n):
        plan = make_plan(clip_seed(seed, i), duration=duration)
        plan = plan.with_changes(instruments={"melody": concept.name, "chords": plan.instruments["chords"],
                                              "bass": "bass"})
        score = realize(plan)
        rendering = render_score(score, tracks=("melody",))
        out.append(Clip(f"{concept.name}{i:02d}", score, rendering, [concept.reference_prompt()]))
    return out


def with_lead(prompt: str, old: str, new: str) -> str:
    """``prompt`` with the lead instrument's word ``old`` replaced by ``new`` (first occurrence)."""
    if old not in prompt:
        raise ValueError(f"{old!r} is not in the prompt {prompt!r}")
    return prompt.replace(old, new, 1)


@dataclass
class ConceptEdit:
    """A source clip, its exact target with the concept on the melody, and the prompts each method uses:
    ``concept_prompt`` (the rare token, SteerMusic+ / DreamSound / textual inversion), ``text_prompt`` (the
    concept's plain name, SteerMusic with a text target) and ``class_prompt`` (the class word, the regulariser)."""

    pair: EditPair
    concept: Concept
    concept_prompt: str
    text_prompt: str
    class_prompt: str

    @property
    def source_prompt(self) -> str:
        return self.pair.source_prompt


def concept_edit(clip: Clip, name: str) -> ConceptEdit:
    """Re-render ``clip`` with concept ``name`` on the melody (the exact target) and build the prompts."""
    concept = get_concept(name)
    old = clip.plan.instruments["melody"]
    inst = dict(clip.plan.instruments)
    inst["melody"] = concept.name
    target = clip_from_plan(clip.plan.with_changes(instruments=inst), sr=clip.sr,
                            clip_id=f"{clip.clip_id}_on_{concept.name}")
    src_prompt = captions(clip.score)[0]
    pair = EditPair("concept", clip, target, src_prompt, captions(target.score)[0],
                    f"play the melody on the {concept.name}", {"from": old, "to": concept.name})
    return ConceptEdit(pair, concept, with_lead(src_prompt, old, concept.instance_phrase),
                       with_lead(src_prompt, old, concept.name), with_lead(src_prompt, old, concept.class_word))


def concept_edits(name: str, n: int, *, seed: int, duration: float = 5.12) -> list[ConceptEdit]:
    """``n`` held-out edits to concept ``name`` from clips of ``seed`` (their leads are corpus instruments)."""
    from musicprobe.synth.corpus import make_clip

    return [concept_edit(make_clip(clip_seed(seed, i), duration=duration), name) for i in range(n)]


def concept_names() -> list[str]:
    return list(CONCEPTS)


__all__ = ["CONCEPTS", "CONCEPT_INSTRUMENTS", "CONCEPT_SEED", "Concept", "ConceptEdit", "concept_clips",
           "concept_edit", "concept_edits", "get_concept"]
