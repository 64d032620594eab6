python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD/src || exit
export WEATHERGNN_COMMIT=$1
nvidia-smi --query-gpu=name --format=csv,noheader
timeout 150 python3 -m pytest -q -p no:cacheprovider -W ignore::DeprecationWarning tests/test_triton_kernels.py > $OUT/gpu_tests_triton.txt 2>&1; tail -3 $OUT/gpu_tests_triton.txt
timeout 200 python3 benchmarks/kernel_sweep_edge_linear.py --json $OUT/edge_linear_sweep.json --repeats 7 2>&1 | grep -v "^ *$" | tail -40
export WEATHERGNN_EDGE_LINEAR_SWEEP=$OUT/edge_linear_sweep.json
timeout 230 python3 -m weathergnn.cli.main benchmark --cases interaction --impls ours-triton,ours-triton-compiled,ours-triton-cublas,ours-triton-cublas-compiled,pyg-compiled --out $OUT/bench 2>&1 | tail -30
