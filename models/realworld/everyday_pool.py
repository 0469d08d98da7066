"""A pool of everyday-style labelled sentences, generated from hand-written fragments (our own text).

    python models/realworld/everyday_pool.py --per-label 500 --seed 0 --out build/everyday.jsonl

The emotion dataset's texts nearly all follow one template ("i feel ..."), so a model trained on
it alone learns the word after "feel" and little about how people write. This pool describes
situations and reactions in chat, review, post and message styles, one clear emotion each, for
training and for the domain-adaptation curves. It was written apart from the evaluation set
(eval.jsonl, dev.jsonl beside this script), which shares no sentence with it; only the
evaluation set measures the model.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

LABELS = ("sadness", "joy", "love", "anger", "fear", "surprise")

EVENTS = {
    "sadness": [
        "my old dog passed away last night",
        "we buried my grandfather this afternoon",
        "my best friend stopped talking to me",
        "i got laid off after eight years",
        "the adoption fell through",
        "my parents are getting divorced",
        "i didn't get into any of the schools i applied to",
        "my girlfriend left me for someone else",
        "the vet said there's nothing more they can do",
        "i spent the whole weekend alone again",
        "our family home was sold today",
        "my aunt lost her fight with cancer",
        "i failed my final exam",
        "nobody came to my exhibition",
        "my son moved abroad and i barely hear from him",
        "i lost the last photo i had of my mother",
        "we had to put our cat down",
        "the friendship is over",
        "my grandmother is in hospice now",
        "i was the only one not invited",
        "the baby bird we rescued didn't make it",
        "i haven't heard from my brother in months",
        "my hometown has changed so much it doesn't feel like home",
        "i finally admitted the relationship is over",
        "my childhood friend passed away suddenly",
    ],
    "joy": [
        "i just got promoted",
        "we won the championship",
        "my paper got accepted",
        "i passed the bar exam",
        "our flight got upgraded to business class",
        "my sister had a healthy baby girl",
        "i finished my degree",
        "we closed on our new house",
        "the sun finally came out after a week of rain",
        "i got a perfect score",
        "my small business had its best month ever",
        "i ran my fastest 10k",
        "our team shipped the release on time",
        "the doctor said i'm cancer free",
        "we're going on holiday tomorrow",
        "i found the perfect apartment",
        "my garden produced its first strawberries",
        "i got the scholarship",
        "my band played to a full room",
        "we adopted a kitten today",
        "my article went viral for all the right reasons",
        "the kids aced their recital",
        "i learned to ride a bike at forty",
        "my favourite band announced a tour in my city",
        "we finally paid off the mortgage",
    ],
    "love": [
        "my wife left a note in my lunchbox",
        "my husband still brings me flowers every friday",
        "my daughter fell asleep on my chest",
        "my partner drove three hours just to see me",
        "grandpa still calls grandma his sweetheart",
        "my boyfriend learned to cook my favourite dish",
        "my dog curls up next to me every night",
        "my best friend knows me better than anyone",
        "my mom hugged me at the airport and wouldn't let go",
        "my girlfriend wrote me a song",
        "we've been together fifteen years",
        "my baby smiled at me for the first time",
        "my fiance holds my hand everywhere",
        "my kids made me breakfast in bed",
        "my partner stayed up all night caring for me",
        "my twins call each other their favourite person",
        "my husband still dances with me in the kitchen",
        "my grandmother knits me a scarf every winter",
        "she looks at me like i'm the only person in the room",
        "my cat headbutts me every morning",
        "we renewed our vows",
        "my son said i'm his hero",
        "my partner remembers every little thing i like",
        "my wife laughs at all my terrible jokes",
        "he proposed on the beach where we met",
    ],
    "anger": [
        "the courier threw my parcel over the fence and it broke",
        "my landlord kept my deposit for no reason",
        "someone stole my bike from outside the gym",
        "the restaurant served me raw chicken",
        "my manager blamed me for his mistake",
        "the company charged me for a cancelled subscription",
        "my neighbour's dog dug up my garden again",
        "the repairman never showed up after i took the day off",
        "a driver nearly ran me over and then honked at me",
        "my sibling read my private messages",
        "the airline lost my luggage and won't answer emails",
        "they gave my seat away at the concert",
        "the store refused to honour the warranty",
        "my teammate took credit for my idea",
        "the internet company throttled my connection again",
        "someone dumped rubbish on my driveway",
        "the insurance company denied my claim on a technicality",
        "my roommate broke my guitar and lied about it",
        "the school ignored the bullying for months",
        "the hotel double booked our room and shrugged",
        "my phone was stolen and the thief is taunting me",
        "the council towed my car from my own street",
        "they cancelled my order after taking the money",
        "the referee gave a penalty for nothing",
        "my ex posted my private photos",
    ],
    "fear": [
        "there's a noise outside my window in the middle of the night",
        "the test results come back on friday",
        "my daughter hasn't answered her phone all day",
        "the car started skidding on the ice",
        "the hurricane is heading straight for us",
        "i have to give a speech to three hundred people",
        "a stranger has been standing outside my house for an hour",
        "the lights went out during the storm",
        "my chest has been hurting since this morning",
        "the company is announcing layoffs tomorrow",
        "i heard glass breaking downstairs",
        "the flood water is almost at our door",
        "my son is going into surgery",
        "there's a wasp nest right above my bed",
        "the elevator got stuck between floors",
        "i'm going to the dentist for a root canal",
        "the plane dropped suddenly",
        "my dog is missing and it's getting dark",
        "i got a threatening message from an unknown number",
        "the ice on the lake is cracking under us",
        "my mum collapsed and the ambulance is on its way",
        "the forest fire is getting closer",
        "i have a job interview with the ceo tomorrow",
        "someone tried the handle of my car door",
        "the ground started shaking",
    ],
    "surprise": [
        "my shy coworker turned out to be a stand-up comedian",
        "the package arrived two weeks early",
        "my parents showed up at my door unannounced from overseas",
        "i found out i have a half-sister",
        "the old vase in the attic is worth a fortune",
        "my quiet neighbour won a gold medal",
        "the store gave me a free laptop by mistake",
        "it hailed in the middle of july",
        "my friend is secretly a millionaire",
        "the movie ended with the hero being the villain",
        "my boss just resigned without warning",
        "my childhood crush messaged me after twenty years",
        "the band i love is playing at my cousin's wedding",
        "my ten year old solved the puzzle before me",
        "the quiet kid in class is a chess grandmaster",
        "i bumped into my teacher at a rock concert",
        "the lottery ticket i forgot about was a winner",
        "my grandad just got his first tattoo",
        "the restaurant was run by my old school friend",
        "my cat came back after missing for a year",
        "my sister eloped last weekend",
        "the power bill was zero this month",
        "my dog learned to open the door",
        "the exam was cancelled this morning",
        "a famous actor sat at the next table",
    ],
}

REACTIONS = {
    "sadness": [
        "i can't stop crying",
        "my heart is broken",
        "everything feels empty",
        "i'm so sad",
        "this hurts so much",
        "i'm devastated",
        "i just want to curl up and disappear",
        "i miss them already",
        "worst week of my life",
        "i'm grieving",
        "i'm heartbroken",
        "life seems so grey right now",
        "i'm in tears",
        "so much sorrow",
        "i feel so alone",
    ],
    "joy": [
        "i'm over the moon",
        "best day ever",
        "so happy right now",
        "can't stop smiling",
        "what a great feeling",
        "i'm thrilled",
        "pure joy",
        "we're celebrating tonight",
        "absolutely delighted",
        "yay!!",
        "life is good",
        "i'm on cloud nine",
        "so excited",
        "i'm grinning like an idiot",
        "today was amazing",
    ],
    "love": [
        "i love them so much",
        "my heart is full",
        "i adore them",
        "i'm the luckiest person alive",
        "i'm so in love",
        "they mean everything to me",
        "i cherish every moment with them",
        "love you forever",
        "my heart melts",
        "i'm crazy about them",
        "nothing compares to their love",
        "so much love",
        "i'm so devoted to them",
        "they're my whole world",
        "i'd do anything for them",
    ],
    "anger": [
        "i'm furious",
        "absolutely unacceptable",
        "i'm livid",
        "this makes my blood boil",
        "so angry right now",
        "i'm fuming",
        "how dare they",
        "i'm done with this nonsense",
        "disgraceful",
        "i could scream",
        "outrageous",
        "never again",
        "i'm seething",
        "what a joke",
        "i'm sick of being treated like this",
    ],
    "fear": [
        "i'm terrified",
        "i'm so scared",
        "my hands are shaking",
        "i can't stop panicking",
        "i'm afraid",
        "i'm petrified",
        "my heart is racing",
        "i'm frightened",
        "please let everything be ok",
        "i'm so nervous",
        "i'm anxious",
        "i can barely breathe",
        "i'm scared out of my mind",
        "i'm dreading it",
        "i'm trembling",
    ],
    "surprise": [
        "i'm shocked",
        "i did not see that coming",
        "no way!!",
        "i'm speechless",
        "what a surprise",
        "i can't believe it",
        "mind blown",
        "wow, just wow",
        "who would have thought",
        "i'm stunned",
        "are you kidding me?!",
        "what?!",
        "totally unexpected",
        "i'm amazed",
        "jaw on the floor",
    ],
}

# (style, template); {e} is the event, {r} the reaction
FORMS = [
    ("chat", "{e}, {r}"),
    ("chat", "{e}... {r}"),
    ("chat", "omg {e}. {r}"),
    ("chat", "{r}. {e}"),
    ("post", "{e}. {r}"),
    ("post", "update: {e}. {r}"),
    ("post", "so {e} today. {r}"),
    ("message", "hey, {e}. {r}"),
    ("message", "just wanted you to know {e}. {r}"),
    ("message", "{e}, {r}. call me later"),
    ("review", "{e}. {r}. five stars for honesty at least"),
    ("review", "{e}. {r}. one star"),
    ("chat", "{e}"),
    ("post", "{e}"),  # the situation alone, no emotion word
]
REVIEW_LABELS = {"anger", "joy", "surprise"}  # review templates read naturally for these


def generate(per_label: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for label in LABELS:
        forms = [f for f in FORMS if f[0] != "review" or label in REVIEW_LABELS]
        seen: set[str] = set()
        while sum(r["label"] == label for r in rows) < per_label:
            style, form = rng.choice(forms)
            text = form.format(e=rng.choice(EVENTS[label]), r=rng.choice(REACTIONS[label]))
            if rng.random() < 0.3:
                text = text[0].upper() + text[1:]
            if text not in seen:
                seen.add(text)
                rows.append({"text": text, "label": label, "style": style})
    rng.shuffle(rows)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--per-label", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as fh:
        for row in generate(args.per_label, args.seed):
            fh.write(json.dumps(row) + "\n")
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
