#!/usr/bin/env python3
"""Stage 1: a seeded, varied prompt set in provmark's prompt format (JSONL {"id","prompt"}).

14 task families x 40 topics; 10 families are for training (teacher answers the
students see), 4 are held out (used only to query students black-box and for
lab answers no student saw). Writes train.jsonl and heldout.jsonl.
"""
import argparse, json, os, random

FAMILIES = {
    # train families
    "explain": "Explain {t} to a curious teenager in a few short paragraphs.",
    "howto": "Give step-by-step instructions for getting started with {t}.",
    "pros_cons": "What are the main advantages and disadvantages of {t}?",
    "history": "Tell the short history of {t}.",
    "faq": "Write three frequently asked questions about {t}, with answers.",
    "compare": "Compare {t} with a common alternative and say when to choose each.",
    "tips": "List practical tips for someone who wants to improve at {t}.",
    "misconception": "What are common misconceptions about {t}, and what is actually true?",
    "summary": "Summarise what a beginner should know about {t} in one paragraph.",
    "lesson": "Plan a 30-minute lesson that introduces {t} to adults.",
    # held-out families
    "story": "Write a short story in which {t} plays an important role.",
    "poem": "Write a poem about {t}.",
    "letter": "Write a friendly letter to a friend recommending {t}.",
    "dialogue": "Write a short dialogue between two people who disagree about {t}.",
}
HELD_OUT = ["story", "poem", "letter", "dialogue"]
TOPICS = [
    "gardening", "photosynthesis", "the stock market", "chess", "volcanoes", "baking bread",
    "public transport", "honeybees", "the internet", "meditation", "solar panels", "jazz",
    "the Roman Empire", "cycling to work", "recycling", "black holes", "learning a language",
    "coffee", "vaccines", "mountain hiking", "3D printing", "the water cycle", "board games",
    "electric cars", "origami", "sleep", "libraries", "birdwatching", "climate change",
    "running a marathon", "compound interest", "the printing press", "robots", "tea ceremonies",
    "coral reefs", "open-source software", "knitting", "earthquakes", "city parks", "astronomy",
]

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out-dir", default="/work/exp/prompts")
    ap.add_argument("--seed", type=int, default=17)
    a = ap.parse_args()
    os.makedirs(a.out_dir, exist_ok=True)
    rng = random.Random(a.seed)
    train, held = [], []
    for fam, tpl in FAMILIES.items():
        for i, t in enumerate(TOPICS):
            rec = {"id": f"{fam}-{i:02d}", "prompt": tpl.format(t=t)}
            (held if fam in HELD_OUT else train).append(rec)
    rng.shuffle(train); rng.shuffle(held)
    for name, recs in (("train", train), ("heldout", held)):
        with open(os.path.join(a.out_dir, f"{name}.jsonl"), "w") as f:
            for r in recs:
                f.write(json.dumps(r) + "\n")
        print(name, len(recs))
    # the subsets used on a 2-core CPU: 200 train prompts, 80 held-out prompts for lab answers,
    # the other 80 held-out prompts to query the students black-box
    for name, recs in (("train200", train[:200]), ("heldout_lab", held[:80]), ("heldout_query", held[80:])):
        with open(os.path.join(a.out_dir, f"{name}.jsonl"), "w") as f:
            for r in recs:
                f.write(json.dumps(r) + "\n")

if __name__ == "__main__":
    main()
