python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD/src || exit
export WEATHERGNN_COMMIT=$1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 170 python3 -m pytest -q -p no:cacheprovider -W ignore::DeprecationWarning tests > $OUT/gpu_tests.txt 2>&1; tail -4 $OUT/gpu_tests.txt
timeout 400 python3 -m weathergnn.cli.main benchmark --out $OUT/bench --max-minutes 6.4 2>&1 | grep -E "^\| (interaction|step|sum|locality|fused) |Copy|skipped"
