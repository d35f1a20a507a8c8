#!/bin/sh
# Installs the Debian packages the project needs, when they are missing:
#   graphviz              the `dot` binary that show_model.py renders with
#   dataset-fashion-mnist the official Fashion-MNIST IDX files (the built-in data set)
# As root it installs them; otherwise it prints the one command to run.
set -e
missing=""
command -v dot >/dev/null 2>&1 || missing="$missing graphviz"
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || missing="$missing dataset-fashion-mnist"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian packages:$missing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
else
    echo "missing Debian packages; run: sudo apt-get install -y$missing"
fi
