"""How often two random-policy InvertedPendulum clips tie in true return, with and without a
graded posture penalty: 40 random episodes of the preset (horizon 100), 38-step clips cut every
10 steps, 5000 random pairs. Run: MUJOCO_GL=disable python results/falls/ablation-ip-posture/ties.py
"""
import numpy as np
from prefrl.envs import load_preset, make_env
p = load_preset("InvertedPendulum")
env = make_env(p, seed=0)
rng = np.random.default_rng(0)
angles=[]; rews=[]
for ep in range(40):
    env.reset()
    a_ep=[]; r_ep=[]
    for t in range(100):
        o,r,te,tr,info = env.step(env.action_space.sample())
        a_ep.append(env.unwrapped.data.qpos[1]); r_ep.append(r)
    angles.append(a_ep); rews.append(r_ep)
A=np.array(angles); R=np.array(rews)
print("abs angle quantiles at t=10,30,60,99:", [np.round(np.quantile(np.abs(A[:,t]),[0.1,0.5,0.9]),2) for t in (10,30,60,99)])
print("jnt range", env.unwrapped.model.jnt_range, "limited", env.unwrapped.model.jnt_limited)
L=38
clips=[(e,s) for e in range(40) for s in range(0,100-L+1,10)]
def ret(e,s,pen):
    a=A[e,s:s+L]; return R[e,s:s+L].sum() + pen(a).sum()
for name,pen in [("none",lambda a:0*a),("-a^2",lambda a:-a**2),("-(|a|-0.2)+^2",lambda a:-np.clip(np.abs(a)-0.2,0,None)**2)]:
    idx=rng.integers(len(clips),size=(5000,2))
    d=np.array([ret(*clips[i],pen)-ret(*clips[j],pen) for i,j in idx])
    print(name, "exact ties", np.mean(d==0).round(3), " |d|<0.01", np.mean(np.abs(d)<0.01).round(3), "|d|<0.1", np.mean(np.abs(d)<0.1).round(3), "std", d.std().round(2))
