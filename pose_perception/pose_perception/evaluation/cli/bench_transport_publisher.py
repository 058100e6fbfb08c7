"""Child process of `pose-perception bench transport`: publishes the image + depth stream."""

import argparse
import sys

from pose_perception.evaluation.cli.bench_transport import _publisher, add_arguments

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    sys.exit(_publisher(parser.parse_args()))
