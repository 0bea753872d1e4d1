import numpy as np
a = np.loadtxt("/tmp/fix13/ks.txt", ndmin=2)
print("reps", len(a), "min ps min %.4f  median ps min %.4f  max ps max %.4f" % (a[:,1].min(), np.median(a[:,1]), a[:,2].max()))
names = {"raw ate": 3, "raw att": 5, "clip.01 ate": 7, "clip.01 att": 9, "hajek clip.01 ate": 11, "clip.025 ate": 13, "clip.025 att": 15}
for k, j in names.items():
    e, s = a[:, j], a[:, j + 1]
    print(f"{k:18s} bias {e.mean()-10:+.3f} RMSE {np.sqrt(np.mean((e-10)**2)):.3f} cover {np.mean(np.abs(e-10) <= 1.959964*s):.3f} SE/SD {s.mean()/e.std(ddof=1):.2f}")
