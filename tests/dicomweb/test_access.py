"""Who sees what over DICOMweb: the office its own cases, a reader a case only while assigned to it, billing,
administrators and other practices nothing (a study they may not see is not found, like one that does not
exist)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests

from tests.dicomweb.conftest import Case
from tests.support.api import new_referral, submit, upload
from tests.support.dicomweb import client_for, radiograph, raw, values
from tests.support.world import Client, Practice, Reader, World


def _paths(case: Case) -> list[str]:
    series = f"/studies/{case.study}/series/{case.series}"
    instance = f"{series}/instances/{case.sops[0]}"
    return [f"/studies/{case.study}", series, instance, f"/studies/{case.study}/metadata", series + "/metadata",
            instance + "/metadata", instance + "/rendered", instance + "/frames/1/rendered", instance + "/thumbnail",
            series + "/thumbnail", f"/studies/{case.study}/thumbnail", instance + "/frames/1"]


def _sees_nothing(base: str, who: Client, case: Case) -> None:
    web = client_for(base, who)
    assert web.search_for_studies() == []
    assert web.search_for_studies(search_filters={"StudyInstanceUID": case.study}) == []
    assert web.search_for_series(case.study) == []
    assert web.search_for_instances(case.study) == []
    calls: list[Callable[[], Any]] = [
        lambda: web.retrieve_instance(case.study, case.series, case.sops[0]),
        lambda: web.retrieve_instance_metadata(case.study, case.series, case.sops[0]),
    ]
    for call in calls:
        with pytest.raises(requests.HTTPError) as raised:
            call()
        assert raised.value.response.status_code == 404
    for path in _paths(case):
        response = raw(base, path, who)
        assert response.status_code == 404, (path, response.status_code)
        assert case.study not in response.text


def _sees_the_case(base: str, who: Client, case: Case) -> None:
    web = client_for(base, who)
    assert [values(s, "0020000D")[0] for s in web.search_for_studies()] == [case.study]
    assert web.retrieve_instance(case.study, case.series, case.sops[0]).SOPInstanceUID == case.sops[0]
    for path in _paths(case):
        assert raw(base, path, who).status_code == 200, path


def test_the_office_sees_its_case(dicomweb_url: str, riverside: Practice, case: Case):
    _sees_the_case(dicomweb_url, riverside.staff, case)
    _sees_the_case(dicomweb_url, riverside.dentist, case)


def test_billing_administrators_and_other_practices_see_nothing(dicomweb_url: str, riverside: Practice,
                                                                hillside: Practice, case: Case):
    for who in (riverside.billing, riverside.org_admin, hillside.staff, hillside.dentist):
        _sees_nothing(dicomweb_url, who, case)


def test_a_reader_sees_the_case_only_while_assigned(dicomweb_url: str, world: World, riverside: Practice,
                                                    reader: Reader, case: Case):
    bystander = world.reader(world.reader_practice("Valley Endodontics"), states=("NV",), last_name="Other")
    _sees_nothing(dicomweb_url, reader.client, case)  # a draft is the office's alone
    submitted = submit(riverside, case.referral_id)
    assert submitted.get_json()["assigned_provider_id"] == reader.provider_id, submitted.get_json()
    _sees_the_case(dicomweb_url, reader.client, case)
    _sees_nothing(dicomweb_url, bystander.client, case)
    declined = reader.client.post(f"/api/v1/referrals/{case.referral_id}/decline", {"reason": "on leave"})
    assert declined.status_code == 200, declined.get_json()
    _sees_nothing(dicomweb_url, reader.client, case)


def test_a_same_study_uid_in_another_practice_stays_apart(dicomweb_url: str, riverside: Practice,
                                                          hillside: Practice, case: Case):
    """Another practice's file claiming the same Study Instance UID neither joins nor reveals Riverside's study."""
    referral_id = new_referral(hillside)
    data, _, _, sop = radiograph(study=case.study)
    assert upload(hillside.staff, hillside, referral_id, data).status_code == 201
    theirs = client_for(dicomweb_url, hillside.staff).search_for_instances(case.study)
    assert [values(i, "00080018")[0] for i in theirs] == [sop]
    ours = client_for(dicomweb_url, riverside.staff).search_for_instances(case.study)
    assert [values(i, "00080018")[0] for i in ours] == case.sops
