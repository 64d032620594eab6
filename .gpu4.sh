python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD/src || exit
export WEATHERGNN_COMMIT=$1
timeout 100 python3 -m pytest -q -p no:cacheprovider -W ignore::DeprecationWarning tests/test_triton_kernels.py tests/test_models.py 2>&1 | tail -2
timeout 300 python3 -m weathergnn.cli.main benchmark --cases interaction,step --impls ours-triton,ours-triton-compiled,ours-triton-chunked,ours-triton-chunked-blocks-compiled,pyg-compiled --out $OUT/bench --max-minutes 4.5 2>&1 | grep -E "^\| (interaction|step) |Copy"
rm -f $OUT/bench/*.png
