"""A script for `spark-submit` (absolute imports, so it runs as __main__):

    spark-submit --master yarn "$(python -c 'import emotion_onnx.spark_job as j; print(j.__file__)')" \\
        --input s3://bucket/reviews/ --output s3://bucket/scored/ --text-column review
"""

from emotion_onnx.spark import main

if __name__ == "__main__":
    raise SystemExit(main())
