python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD/src || exit
export WEATHERGNN_COMMIT=$1
timeout 120 python3 benchmarks/kernel_sweep_edge_linear.py --json $OUT/edge_linear_sweep.json --repeats 7 2>&1 | grep best
export WEATHERGNN_EDGE_LINEAR_SWEEP=$OUT/edge_linear_sweep.json
timeout 340 python3 -m weathergnn.cli.main benchmark --out $OUT/bench --max-minutes 5.4 2>&1 | grep -E "^\| (interaction|step|sum) " 
timeout 110 python3 -m weathergnn.cli.main benchmark --cases interaction,step --impls ours-triton-cublas,ours-triton-cublas-compiled,ours-triton-chunked-blocks-compiled-cublas --out $OUT/extra --max-minutes 1.6 2>&1 | grep -E "^\| (interaction|step) "
rm -f $OUT/extra/*.png
