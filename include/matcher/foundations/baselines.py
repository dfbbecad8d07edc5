"""The baseline a fine-tuned bi-encoder has to beat: TF-IDF + logistic regression.

A supervised bag-of-words classifier trained on the same training split. If the bi-encoder cannot
beat it, a GPU is not worth its cost; the validation report shows both side by side.
"""

from __future__ import annotations

import numpy as np


def tfidf_scores(train: list[dict], texts: list[str], categories: list[str]) -> tuple[np.ndarray, list[str]]:
    """(texts x categories) class probabilities of a TF-IDF + logistic-regression model fitted on ``train``."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(
        sublinear_tf=True, min_df=2 if len(train) > 50 else 1, ngram_range=(1, 2), max_features=100_000
    )
    features = vectorizer.fit_transform([cv["text"] for cv in train])
    classifier = LogisticRegression(max_iter=2000, C=10.0).fit(features, [cv["category"] for cv in train])
    probabilities = classifier.predict_proba(vectorizer.transform(texts))
    classes = list(classifier.classes_)
    columns = [probabilities[:, classes.index(c)] if c in classes else np.zeros(len(texts)) for c in categories]
    return np.stack(columns, axis=1), categories
