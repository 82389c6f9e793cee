//! Merchants and sales units.

use super::helpers::*;

pub async fn merchants_are_listed_in_creation_order_and_found_by_id_and_by_org(s: &dyn Store) {
    // Arrange
    let dk = match BusinessId::parse("org", "business:DK:CVR", "12345678") {
        Ok(b) => b,
        Err(e) => panic!("test CVR: {e}"),
    };

    // Act
    let a = add_merchant(s, "987654321", "ACME Fitness AS").await;
    let b = must(
        s.create_merchant(
            &by(),
            NewMerchant {
                business: dk.clone(),
                name: "Bageriet ApS".into(),
            },
        )
        .await,
        "create DK merchant",
    );

    // Assert
    assert_eq!(
        a,
        Merchant {
            id: a.id,
            business: org("987654321"),
            name: "ACME Fitness AS".into(),
            created_at: contract_now()
        }
    );
    assert_eq!(
        b,
        Merchant {
            id: b.id,
            business: dk,
            name: "Bageriet ApS".into(),
            created_at: contract_now()
        }
    );
    assert_ne!(a.id, b.id, "two merchants got the same id");
    assert_eq!(
        must(s.merchants().await, "list merchants"),
        vec![a.clone(), b.clone()]
    );
    assert_eq!(
        must(s.merchant(a.id).await, "merchant by id"),
        Some(a.clone())
    );
    assert_eq!(
        must(s.merchant(b.id).await, "merchant by id"),
        Some(b.clone())
    );
    assert_eq!(
        must(s.merchant_by_org("987654321").await, "merchant by org"),
        Some(a.clone())
    );
    assert_eq!(
        must(s.merchant_by_org("12345678").await, "merchant by org"),
        Some(b.clone())
    );
    assert_eq!(
        must(s.merchant_by_org("999999999").await, "unknown org"),
        None
    );
    assert_eq!(
        must(
            s.merchant(a.id.max(b.id) + 1000).await,
            "unknown merchant id"
        ),
        None
    );
}

pub async fn a_second_merchant_with_the_same_organisation_is_a_conflict(s: &dyn Store) {
    // Arrange
    let first = add_merchant(s, "987654321", "ACME Fitness AS").await;

    // Act
    let again = s
        .create_merchant(
            &by(),
            NewMerchant {
                business: org("987654321"),
                name: "Impostor AS".into(),
            },
        )
        .await;

    // Assert
    assert_error(
        again,
        Expect::Conflict,
        "a second merchant with organisation 987654321",
    );
    assert_eq!(
        must(s.merchants().await, "list merchants"),
        vec![first.clone()]
    );
    assert_eq!(
        must(s.merchant_by_org("987654321").await, "merchant by org"),
        Some(first)
    );
}

pub async fn an_api_sales_unit_is_addressed_as_api_and_its_msn(s: &dyn Store) {
    // Arrange
    let m = add_merchant(s, "987654321", "ACME Fitness AS").await;

    // Act
    let u = add_api_unit(s, m.id, "123455", "ACME Fitness Oslo").await;

    // Assert
    let expected = SalesUnit {
        msn: msn("123455"),
        merchant_id: m.id,
        name: "ACME Fitness Oslo".into(),
        kind: SalesUnitKind::Api,
        country: Country::NO,
        handle: RecipientHandle::Api(msn("123455")),
        created_at: contract_now(),
    };
    assert_eq!(u, expected);
    assert_eq!(u.handle.to_string(), "api:123455");
    assert_eq!(
        must(s.sales_unit(msn("123455")).await, "sales unit by msn"),
        Some(expected)
    );
    assert_eq!(must(s.sales_unit(msn("654321")).await, "unknown msn"), None);
}

pub async fn a_vm_number_sales_unit_is_addressed_by_its_country_and_number(s: &dyn Store) {
    // Arrange
    let m = add_merchant(s, "987654321", "ACME Fitness AS").await;

    // Act
    let no = add_vm_unit(s, m.id, "223344", Country::NO, "57860").await;
    let dk = add_vm_unit(s, m.id, "334455", Country::DK, "90601").await;

    // Assert
    let expected_no = SalesUnit {
        msn: msn("223344"),
        merchant_id: m.id,
        name: "Vippsnummer 57860".into(),
        kind: SalesUnitKind::VmNumber,
        country: Country::NO,
        handle: RecipientHandle::VmNumber {
            country: Country::NO,
            number: "57860".into(),
        },
        created_at: contract_now(),
    };
    assert_eq!(no, expected_no);
    assert_eq!(no.handle.to_string(), "NO:57860");
    assert_eq!(
        dk.handle,
        RecipientHandle::VmNumber {
            country: Country::DK,
            number: "90601".into()
        }
    );
    assert_eq!(dk.handle.to_string(), "DK:90601");
    assert_eq!(dk.country, Country::DK);
    assert_eq!(
        must(s.sales_unit(msn("223344")).await, "vm unit by msn"),
        Some(expected_no)
    );
    assert_eq!(
        must(s.sales_unit(msn("334455")).await, "vm unit by msn"),
        Some(dk)
    );
}

pub async fn a_sales_unit_whose_number_does_not_fit_its_kind_is_invalid(s: &dyn Store) {
    // Arrange
    let m = add_merchant(s, "987654321", "ACME Fitness AS").await;
    let unit = |kind, vm_number: Option<&str>| NewSalesUnit {
        msn: msn("223344"),
        merchant_id: m.id,
        name: "Kiosken".into(),
        kind,
        country: Country::NO,
        vm_number: vm_number.map(str::to_owned),
    };

    // Act
    let vm_without_number = s
        .create_sales_unit(&by(), unit(SalesUnitKind::VmNumber, None))
        .await;
    let vm_with_bad_number = s
        .create_sales_unit(&by(), unit(SalesUnitKind::VmNumber, Some("57a60")))
        .await;
    let api_with_number = s
        .create_sales_unit(&by(), unit(SalesUnitKind::Api, Some("57860")))
        .await;

    // Assert
    assert_error(
        vm_without_number,
        Expect::Invalid,
        "a vm-number unit without its number",
    );
    assert_error(
        vm_with_bad_number,
        Expect::Invalid,
        "a vm-number unit with number 57a60",
    );
    assert_error(
        api_with_number,
        Expect::Invalid,
        "an api unit with a Vippsnummer",
    );
    assert_eq!(
        must(s.sales_unit(msn("223344")).await, "refused unit"),
        None
    );
    assert_eq!(must(s.sales_units(None).await, "list units"), vec![]);
}

pub async fn sales_units_are_listed_per_merchant_in_msn_order(s: &dyn Store) {
    // Arrange
    let a = add_merchant(s, "987654321", "ACME Fitness AS").await;
    let b = add_merchant(s, "912345678", "Bakeriet AS").await;
    let a2 = add_vm_unit(s, a.id, "223344", Country::NO, "57860").await;
    let a3 = add_api_unit(s, a.id, "1234567", "ACME Bergen").await;
    let a1 = add_api_unit(s, a.id, "123455", "ACME Oslo").await;
    let b1 = add_api_unit(s, b.id, "54321", "Bakeriet").await;

    // Act
    let of_a = must(s.sales_units(Some(a.id)).await, "units of A");
    let of_b = must(s.sales_units(Some(b.id)).await, "units of B");
    let all = must(s.sales_units(None).await, "all units");
    let of_nobody = must(
        s.sales_units(Some(a.id.max(b.id) + 1000)).await,
        "units of an unknown merchant",
    );

    // Assert
    assert_eq!(of_a, vec![a1.clone(), a2.clone(), a3.clone()]);
    assert_eq!(of_b, vec![b1.clone()]);
    assert_eq!(all, vec![b1, a1, a2, a3]);
    assert_eq!(of_nobody, vec![]);
}

pub async fn a_sales_unit_msn_or_handle_used_twice_is_a_conflict(s: &dyn Store) {
    // Arrange
    let a = add_merchant(s, "987654321", "ACME Fitness AS").await;
    let b = add_merchant(s, "912345678", "Bakeriet AS").await;
    let api = add_api_unit(s, a.id, "123455", "ACME Oslo").await;
    let vm = add_vm_unit(s, a.id, "223344", Country::NO, "57860").await;
    let vm_unit = |number: &str, country, vm: &str| NewSalesUnit {
        msn: msn(number),
        merchant_id: b.id,
        name: "Bakeriet".into(),
        kind: SalesUnitKind::VmNumber,
        country,
        vm_number: Some(vm.into()),
    };

    // Act
    let same_msn = s
        .create_sales_unit(
            &by(),
            NewSalesUnit {
                msn: msn("123455"),
                merchant_id: b.id,
                name: "Bakeriet".into(),
                kind: SalesUnitKind::Api,
                country: Country::NO,
                vm_number: None,
            },
        )
        .await;
    let same_handle = s
        .create_sales_unit(&by(), vm_unit("334455", Country::NO, "57860"))
        .await;
    let same_number_other_country = s
        .create_sales_unit(&by(), vm_unit("334456", Country::DK, "57860"))
        .await;

    // Assert
    assert_error(same_msn, Expect::Conflict, "a second unit with msn 123455");
    assert_error(
        same_handle,
        Expect::Conflict,
        "a second unit with handle NO:57860",
    );
    let dk = must(
        same_number_other_country,
        "DK:57860 is another handle than NO:57860",
    );
    assert_eq!(dk.handle.to_string(), "DK:57860");
    assert_eq!(
        must(s.sales_units(Some(a.id)).await, "units of A"),
        vec![api, vm]
    );
    assert_eq!(
        must(s.sales_units(Some(b.id)).await, "units of B"),
        vec![dk]
    );
}

pub async fn a_sales_unit_of_an_unknown_merchant_is_not_found(s: &dyn Store) {
    // Arrange
    let m = add_merchant(s, "987654321", "ACME Fitness AS").await;
    let unit = NewSalesUnit {
        msn: msn("123455"),
        merchant_id: m.id + 1000,
        name: "Nobody's".into(),
        kind: SalesUnitKind::Api,
        country: Country::NO,
        vm_number: None,
    };

    // Act
    let r = s.create_sales_unit(&by(), unit).await;

    // Assert
    assert_error(r, Expect::NotFound, "a unit of an unknown merchant");
    assert_eq!(
        must(s.sales_unit(msn("123455")).await, "refused unit"),
        None
    );
}
