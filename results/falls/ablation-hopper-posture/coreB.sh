#!/bin/bash
set -u
cd /work/exp/s5
WT=/work/g14 ./hopl.sh Hopper-pen3cap-c50 300000 Hopper-pen3cap-c50-learned-0 700
WT=/work/g14 ./hopq2.sh Hopper-pen3cap 1000000 Hopper-pen3cap-1m-true-0
