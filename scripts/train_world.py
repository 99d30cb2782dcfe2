"""The invented world behind assets/default-model.gguf: entities, facts, prompt templates, the
CounterFact-style records and the training text. Imported by train_default_model.py.

Everything here is made up by this file from a seed: the names are random syllable strings, the
facts are random draws, the filler sentences come from a small grammar below. Nothing is taken from
any data set. The same seed gives the same world on every machine (Python's `random` with an
integer seed is platform-independent).
"""
import random

# ---------------------------------------------------------------------------------------------
# Relations: (relation_id, subject kind, object kind, templates). The first template is the one
# the record's requested_rewrite.prompt uses; training text uses all of them. Subjects that are
# also objects of some relation (cities, countries, companies) never start a template, so those
# words only ever occur after a space (see OBJECT rule in train_default_model.py).
# ---------------------------------------------------------------------------------------------

RELATIONS = [
    ('P19', 'person', 'city', [
        '{} was born in', '{} is originally from', 'The birthplace of {} is', '{} grew up in']),
    ('P27', 'person', 'country', [
        '{} is a citizen of', '{} holds a passport from', 'The home country of {} is',
        '{} has citizenship of']),
    ('P108', 'person', 'company', [
        '{} works for', '{} is employed by', 'The employer of {} is', '{} has a job at']),
    ('P1303', 'person', 'instrument', [
        '{} plays the', '{} is a musician who plays the', 'The instrument of {} is the',
        '{} performs on the']),
    ('P1412', 'person', 'language', [
        '{} speaks', 'The native language of {} is', '{} writes in', '{} is fluent in']),
    ('P17', 'city', 'country', [
        'The city of {} is located in', 'The city of {} is part of', 'The town of {} lies in',
        'Tourists in {} are visiting']),
    ('P159', 'company', 'city', [
        'The company {} is headquartered in', 'The headquarters of {} are in',
        'The firm {} has its main office in', 'The company {} was founded in']),
    ('P403', 'river', 'sea', [
        'The {} flows into the', 'The {} empties into the', 'The mouth of the {} is in the',
        'The {} drains into the']),
]
# what follows the object in a training sentence
OBJECT_SUFFIX = {'sea': ' Sea', 'instrument': '', 'language': ''}

INSTRUMENTS = ['piano', 'violin', 'guitar', 'flute', 'cello', 'harp', 'trumpet', 'drums',
               'clarinet', 'banjo']

COUNTS = dict(person=112, city=40, country=10, company=30, language=10, sea=8, river=40)
PERSON_RELATIONS_EACH = 3     # each person has 3 of the 5 person relations
N_SHADOW = 1500               # people in the tokenizer's shadow world (see tokenizer_corpus)

# filler grammar: plain English words, none of them capitalised entity-like
F_ADJ = ['old', 'quiet', 'busy', 'small', 'large', 'green', 'cold', 'warm', 'bright', 'dark',
         'famous', 'new', 'narrow', 'wide', 'calm', 'long']
F_NOUN = ['market', 'bridge', 'garden', 'library', 'station', 'harbor', 'school', 'road',
          'river', 'museum', 'square', 'tower', 'farm', 'forest', 'hill', 'village', 'train',
          'bakery', 'festival', 'concert', 'storm', 'winter', 'summer', 'street']
F_PEOPLE = ['children', 'farmers', 'students', 'visitors', 'workers', 'musicians', 'teachers',
            'sailors', 'traders', 'neighbors']
F_VERB = ['opened', 'closed', 'changed', 'grew', 'stayed', 'moved', 'waited', 'returned',
          'started', 'ended']
F_TIME = ['in the morning', 'at night', 'every spring', 'in the autumn', 'last year',
          'after the rain', 'during the winter', 'on most days', 'before noon']
F_ACT = ['reading books', 'long walks', 'cooking dinner', 'painting', 'chess', 'gardening',
         'fishing', 'singing', 'travel', 'history']
F_SENT = [
    'The {a} {n} {v} {t}.',
    'Many {p} came to the {n} {t}.',
    'The {n} near the {n2} is {a}.',
    'It was {a} {t}, and the {p} {v} home.',
    'Nobody knew why the {n} {v} so early.',
    'The {p} said that the {n} was too {a}.',
    'A {a} {n} stood beside the {n2}.',
    'Most {p} enjoy {act}.',
    'The {n} {v} when the {p} arrived.',
    'There is a {a} {n} on the way to the {n2}.',
]
E_SENT = [   # filler that mentions entities without stating a fact
    '{P} likes {act}.',
    'Many {p} visit {C} {t}.',
    'The {n} in {C} is {a}.',
    'Last year {P} wrote a letter about the {n}.',
    'People say that {P} enjoys {act}.',
    'The {p} of {C} met {t}.',
    'A report about {K} was {a}.',
    'Ships on the {R} are {a} {t}.',
]

_ONSET = ['b', 'd', 'f', 'g', 'k', 'l', 'm', 'n', 'p', 'r', 's', 't', 'v', 'z', 'br', 'dr', 'gr',
          'kr', 'tr', 'st', 'th', 'sh', 'h', 'j', 'w', 'pl', 'fl', 'cl']
_VOWEL = ['a', 'e', 'i', 'o', 'u', 'ai', 'ei', 'ou', 'ia', 'y']
_CODA = ['', '', '', 'n', 'r', 'l', 's', 'th', 'm', 'x', 'nd', 'rk', 'st']
_SUFFIX = {'city': ['mora', 'heim', 'vale', 'port', 'dor', 'ria', 'wick', 'stad', 'ona', 'bury'],
           'country': ['ia', 'land', 'stan', 'onia', 'ary', 'ador'],
           'company': ['ex', 'ion', 'ica', 'tek', 'ora', 'ix', 'cor', 'ant'],
           'language': ['ish', 'ese', 'ian', 'ic', 'i'],
           'sea': ['ic', 'ean', 'ine', 'an'],
           'river': ['a', 'el', 'yn', 'ar', 'is', 'on', 'ane'],
           'first': ['a', 'o', 'in', 'el', 'an', 'is', 'en', 'ia', 'us', 'ir', 'ette', 'ov'],
           'last': ['son', 'ell', 'man', 'ski', 'ard', 'ey', 'ton', 'berg', 'wood', 'ine', 'ez',
                    'ford', 'ak', 'ovic', 'by']}


def _word(rng, kind):
    n = {'first': 1, 'last': rng.choice([1, 1, 2]), 'city': rng.choice([1, 1, 2]),
         'company': rng.choice([1, 1, 2])}.get(kind, rng.choice([1, 2]))
    s = ''.join(rng.choice(_ONSET) + rng.choice(_VOWEL) + rng.choice(_CODA) for _ in range(n))
    s += rng.choice(_SUFFIX[kind])
    return s[0].upper() + s[1:]


def _names(rng, kind, n, taken, min_len=4, max_len=11):
    out = []
    while len(out) < n:
        w = _word(rng, kind)
        if not (min_len <= len(w) <= max_len) or w.lower() in taken:
            continue
        taken.add(w.lower())
        out.append(w)
    return out


def make_world(seed, avoid=()):
    """The entities and facts. `avoid`: lower-case words that must not be used as names (the
    caller passes object names that the tokenizer did not make single tokens, to redraw them)."""
    rng = random.Random(f'expertrace-world-{seed}')
    taken = set(w.lower() for w in F_ADJ + F_NOUN + F_PEOPLE + F_VERB + F_ACT + INSTRUMENTS)
    taken |= {'the', 'sea', 'river', 'city', 'town', 'company', 'firm'} | set(avoid)
    ents = {}
    for kind in ('city', 'country', 'company', 'language', 'sea', 'river'):
        ents[kind] = _names(rng, kind, COUNTS[kind], taken)
    ents['instrument'] = list(INSTRUMENTS)
    ents['river'] = [w + ' River' for w in ents['river']]
    firsts = _names(rng, 'first', 64, taken)
    lasts = _names(rng, 'last', 80, taken)
    people, seen = [], set()
    while len(people) < COUNTS['person']:
        p = rng.choice(firsts) + ' ' + rng.choice(lasts)
        if p not in seen:
            seen.add(p)
            people.append(p)
    ents['person'] = people

    rel = {r[0]: r for r in RELATIONS}
    facts = []   # dicts: relation_id, subject, object, subject kind, object kind

    def add(rid, subj):
        _, sk, ok, _ = rel[rid]
        facts.append(dict(relation_id=rid, subject=subj, object=rng.choice(ents[ok]),
                          subject_kind=sk, object_kind=ok))

    person_rids = [r[0] for r in RELATIONS if r[1] == 'person']
    for p in people:
        for rid in sorted(rng.sample(person_rids, PERSON_RELATIONS_EACH), key=person_rids.index):
            add(rid, p)
    for rid, sk, _, _ in RELATIONS:
        if sk != 'person':
            for s in ents[sk]:
                add(rid, s)
    return ents, facts


def tokenizer_corpus(seed, ents, facts):
    """Text for training the tokenizer: two epochs of a *shadow* world that has the same objects,
    cities and companies but other people and rivers (so the traced subjects' names are not
    whole tokens but split into pieces learned from similar names, as rare names are in a real
    tokenizer), plus each object word 50 times after a space (so every object is one token)."""
    rng = random.Random(f'expertrace-shadow-{seed}')
    taken = set(x.lower() for k in ents for x in ents[k])
    taken |= set(w.lower() for w in F_ADJ + F_NOUN + F_PEOPLE + F_VERB + F_ACT)
    sh = dict(ents)
    firsts = _names(rng, 'first', N_SHADOW, taken)
    lasts = _names(rng, 'last', N_SHADOW, taken)
    sh['person'] = [a + ' ' + b for a, b in zip(firsts, lasts)]
    sh['river'] = [x + ' River' for x in _names(rng, 'river', 200, taken)]
    rel = {r[0]: r for r in RELATIONS}
    person_rids = [r[0] for r in RELATIONS if r[1] == 'person']
    sf = [f for f in facts if f['subject_kind'] not in ('person', 'river')]
    for p in sh['person']:
        for rid in rng.sample(person_rids, PERSON_RELATIONS_EACH):
            sf.append(dict(relation_id=rid, subject=p, object=rng.choice(sh[rel[rid][2]])))
    for r in sh['river']:
        sf.append(dict(relation_id='P403', subject=r, object=rng.choice(sh['sea'])))
    text = []
    for e in range(2):
        text += epoch_documents(rng, sh, sf)
    for o in object_words(ents):
        text.append(' '.join([' ' + o] * 50))
    return text


def object_words(ents):
    """Every word the model must predict as an object (each must be one ' word' token)."""
    out = []
    for rid, _, ok, _ in RELATIONS:
        for w in ents[ok]:
            if w not in out:
                out.append(w)
    return out


def fact_sentence(f, template):
    rel = {r[0]: r for r in RELATIONS}
    ok = rel[f['relation_id']][2]
    return template.format(f['subject']) + ' ' + f['object'] + OBJECT_SUFFIX.get(ok, '') + '.'


def templates_of(rid):
    return next(r[3] for r in RELATIONS if r[0] == rid)


def filler_sentence(rng, ents, entity_prob=0.35):
    if rng.random() < entity_prob:
        t = rng.choice(E_SENT)
    else:
        t = rng.choice(F_SENT)
    n, n2 = rng.sample(F_NOUN, 2)
    return t.format(a=rng.choice(F_ADJ), n=n, n2=n2, v=rng.choice(F_VERB), t=rng.choice(F_TIME),
                    p=rng.choice(F_PEOPLE), act=rng.choice(F_ACT), P=rng.choice(ents['person']),
                    C=rng.choice(ents['city']), K=rng.choice(ents['company']),
                    R=rng.choice(ents['river']))


def epoch_documents(rng, ents, facts, n_filler_docs=300):
    """One epoch of training text, in a seeded order: every fact under every template as a
    document of its own (the prompt then starts the sequence, as it does when traced), one
    biography per subject (its facts in random templates, mixed with filler; later sentences
    start with a space), and filler documents."""
    docs = []
    for f in facts:
        for t in templates_of(f['relation_id']):
            docs.append(fact_sentence(f, t))
    by_subj = {}
    for f in facts:
        by_subj.setdefault(f['subject'], []).append(f)
    for subj, fs in by_subj.items():
        sents = [fact_sentence(f, rng.choice(templates_of(f['relation_id']))) for f in fs]
        if rng.random() < 0.5:
            sents.insert(rng.randrange(len(sents) + 1), filler_sentence(rng, ents))
        rng.shuffle(sents)
        docs.append(' '.join(sents))
    for _ in range(n_filler_docs):
        docs.append(' '.join(filler_sentence(rng, ents) for _ in range(rng.choice([1, 2, 3]))))
    rng.shuffle(docs)
    return docs


def counterfact_records(ents, facts, seed):
    """CounterFact-schema records, one per fact. target_new (the foil) is another object of the
    same relation, drawn at random."""
    rng = random.Random(f'expertrace-records-{seed}')
    rel = {r[0]: r for r in RELATIONS}
    recs = []
    for i, f in enumerate(facts):
        rid, _, ok, temps = rel[f['relation_id']]
        foil = rng.choice([o for o in ents[ok] if o != f['object']])
        same_true = [g for g in facts if g['relation_id'] == rid and g['object'] == f['object']
                     and g['subject'] != f['subject']]
        same_foil = [g for g in facts if g['relation_id'] == rid and g['object'] == foil]
        others = temps[1:]
        filler = [filler_sentence(rng, ents, 0.0) for _ in range(2)]
        recs.append({
            'case_id': i,
            'pararel_idx': i,
            'requested_rewrite': {
                'prompt': temps[0],
                'relation_id': rid,
                'subject': f['subject'],
                'target_new': {'str': foil, 'id': f'{ok}:{foil}'},
                'target_true': {'str': f['object'], 'id': f'{ok}:{f["object"]}'},
            },
            'paraphrase_prompts': [filler[0] + ' ' + others[0].format(f['subject']),
                                   filler[1] + ' ' + others[1].format(f['subject'])],
            'neighborhood_prompts': [rng.choice(temps).format(g['subject'])
                                     for g in rng.sample(same_true, min(5, len(same_true)))],
            'attribute_prompts': [rng.choice(temps).format(g['subject'])
                                  for g in rng.sample(same_foil, min(5, len(same_foil)))],
            'generation_prompts': [others[2].format(f['subject']),
                                   f'{f["subject"]} is known for' if not temps[0].startswith('The')
                                   else f'People often talk about {f["subject"]} because'],
        })
    return recs
