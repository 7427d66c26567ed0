"""Of a run's labels: how many compare clips of equal true return, and how those were answered."""
import sys
from collections import Counter
from prefrl.store import LabelStore
for run in sys.argv[1:]:
    st = LabelStore(f"{run}/labels.sqlite", create=False)
    labs = st.labels()
    clips = {c.hash: c for c in st.get_clips({h for l in labs for h in (l.left, l.right)}, render_state=False)}
    c = Counter()
    for l in labs:
        rl, rr = clips[l.left].true_rews.sum(), clips[l.right].true_rews.sum()
        tie = abs(rl - rr) < 1e-6
        right = (rr > rl)
        a = l.answer.value if hasattr(l.answer, "value") else str(l.answer)
        if tie: c["tie:" + a] += 1
        else: c["informative:" + ("correct" if (a == "right") == right and a != "equal" else a if a=="equal" else "wrong")] += 1
    print(run, dict(sorted(c.items())))
